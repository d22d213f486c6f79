"""The Dask dashboard through the Jupyter server: ``lepton/dashboard/{cluster_id}/{path}``.

Clusters bind their dashboard to 127.0.0.1, which a browser on another machine (JupyterHub, a
remote lab) cannot reach. Like jupyter-server-proxy does for dask-labextension, the server
fetches the page for the user, behind its own authentication. Only the dashboards of clusters
the server lists (launched here or by this user's kernels) are reachable: the target comes from
the cluster list, never from the request. HTTP only: the dashboard's pages and JSON load, the
bokeh plots' live websocket updates are not proxied (reload to refresh).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import tornado.web
from jupyter_server.auth.decorator import authorized
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from lepton_nb.errors import ClusterError, NotFoundError
from lepton_nb.server.handlers import LeptonHandler

# hop-by-hop and length headers are the proxy's own business
_SKIP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
         "server", "date", "set-cookie"}


def dashboard_base(link: str | None, cluster_id: str) -> str:
    """``http://127.0.0.1:PORT`` of a dashboard link, refusing anything not on this host."""
    if not link:
        raise NotFoundError(f"cluster {cluster_id} has no dashboard")
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or parts.hostname not in ("127.0.0.1", "localhost"):
        raise ClusterError(
            f"the dashboard of cluster {cluster_id} is at {link}, not on this host; open it "
            "directly (only loopback dashboards are proxied)"
        )
    return f"{parts.scheme}://{parts.hostname}:{parts.port}"


class DashboardProxyHandler(LeptonHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, cluster_id: str, path: str) -> None:
        info = await self.call(self.clusters.get, cluster_id)
        base = dashboard_base(info.dashboard_link, cluster_id)
        query = f"?{self.request.query}" if self.request.query else ""
        try:
            response = await AsyncHTTPClient().fetch(
                f"{base}/{path}{query}", request_timeout=30, follow_redirects=False
            )
        except HTTPClientError as e:
            if e.response is None:
                msg = f"the dashboard of cluster {cluster_id} did not answer: {e}"
                raise ClusterError(msg) from e
            response = e.response
        except OSError as e:
            msg = f"the dashboard of cluster {cluster_id} did not answer: {e}"
            raise ClusterError(msg) from e
        self.set_status(response.code)
        for name, value in response.headers.get_all():
            if name.lower() not in _SKIP:
                if name.lower() == "location" and value.startswith("/"):
                    value = f"{self.base_url}lepton/dashboard/{cluster_id}{value}"
                self.set_header(name, value)
        self.finish(response.body or b"")
