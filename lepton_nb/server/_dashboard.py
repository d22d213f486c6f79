"""The Dask dashboard through the Jupyter server: ``lepton/dashboard/{cluster_id}/{path}``.

Clusters bind their dashboard to 127.0.0.1, which a browser on another machine (JupyterHub, a
remote lab) cannot reach. Like jupyter-server-proxy does for dask-labextension, the server
fetches the page for the user, behind its own authentication. Only the dashboards of clusters
the server lists (launched here or by this user's kernels) are reachable: the target comes from
the cluster list, never from the request. Pages and JSON go through :class:`DashboardProxyHandler`;
the bokeh plots' live updates (websockets at ``.../ws``, e.g. ``status/ws``) through
:class:`DashboardSocketHandler`, which opens the dashboard's websocket for an authenticated and
authorized user and relays frames both ways.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import (
    WebSocketClientConnection,
    WebSocketClosedError,
    WebSocketError,
    WebSocketHandler,
    websocket_connect,
)

from lepton_nb.errors import ClusterError, LeptonError, NotFoundError
from lepton_nb.server._handlers import AUTH_RESOURCE, LeptonHandler

# hop-by-hop and length headers are the proxy's own business
_SKIP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "server",
    "date",
    "set-cookie",
}


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


def forwarded_query(query: str) -> str:
    """The request's query for the dashboard, without the Jupyter token: a browser that opened
    the page with ``?token=`` sends it again (bokeh repeats the page's query on its socket)."""
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"]
    return f"?{urlencode(kept)}" if kept else ""


class DashboardProxyHandler(LeptonHandler):
    @property
    def content_security_policy(self) -> str:
        # An API handler's policy adds "default-src 'none'", which blocks the dashboard's own
        # scripts and styles; keep only the server's page policy (frame-ancestors 'self').
        return JupyterHandler.content_security_policy.fget(self)  # type: ignore[attr-defined,no-any-return]

    @tornado.web.authenticated
    @authorized
    async def get(self, cluster_id: str, path: str) -> None:
        info = await self.call(self.clusters.get, cluster_id)
        base = dashboard_base(info.dashboard_link, cluster_id)
        query = forwarded_query(self.request.query)
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
        # an API handler answers JSON unless told otherwise: pass the dashboard's type on
        kind = response.headers.get("Content-Type", "application/octet-stream")
        self.finish(response.body or b"", set_content_type=kind)


class DashboardSocketHandler(WebSocketMixin, WebSocketHandler, JupyterHandler):
    """``lepton/dashboard/{cluster_id}/.../ws``: the dashboard's websocket, relayed.

    The upstream socket is opened before the browser's handshake is accepted, so an unknown
    cluster, a dashboard elsewhere or one that does not answer is an HTTP error, not a socket
    that closes at once. Bokeh's session token travels in ``Sec-WebSocket-Protocol``; it is
    passed on as sent and the dashboard's choice of subprotocol is answered back.
    """

    auth_resource = AUTH_RESOURCE
    upstream: WebSocketClientConnection | None = None
    _relay: asyncio.Task[None] | None = None  # kept: a task nobody references may be collected

    def set_default_headers(self) -> None:
        """JupyterHandler's headers (CSP, ...) mean nothing on a websocket."""

    def get_compression_options(self) -> dict[str, Any] | None:
        return self.settings.get("websocket_compression_options", None)  # type: ignore[no-any-return]

    @ws_authenticated
    async def get(self, cluster_id: str, path: str) -> None:
        authorizer, user = self.authorizer, self.current_user
        allowed = await ensure_async(authorizer.is_authorized(self, user, "read", AUTH_RESOURCE))
        if not allowed:
            raise tornado.web.HTTPError(403)
        url = await self._target(cluster_id, path)
        protocols = [
            p.strip()
            for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
            if p.strip()
        ]
        try:
            self.upstream = await websocket_connect(
                HTTPRequest(url, connect_timeout=10, request_timeout=30),
                subprotocols=protocols or None,
            )
        except (TimeoutError, OSError, WebSocketError, HTTPClientError) as e:
            msg = f"the dashboard of cluster {cluster_id} refused its websocket {path}: {e}"
            raise tornado.web.HTTPError(502, msg) from e
        await super().get(cluster_id, path)

    async def _target(self, cluster_id: str, path: str) -> str:
        clusters = self.settings["lepton_clusters"]
        pool = self.settings["lepton_pool"]
        try:
            info = await asyncio.get_running_loop().run_in_executor(pool, clusters.get, cluster_id)
            base = dashboard_base(info.dashboard_link, cluster_id)
        except NotFoundError as e:
            raise tornado.web.HTTPError(404, str(e)) from e
        except LeptonError as e:
            raise tornado.web.HTTPError(409, str(e)) from e
        query = forwarded_query(self.request.query)
        return f"ws{base.removeprefix('http')}/{path}{query}"  # http -> ws, https -> wss

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        chosen = self.upstream.selected_subprotocol if self.upstream is not None else None
        return chosen if chosen in subprotocols else None

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        self._relay = asyncio.ensure_future(self._relay_down())

    async def _relay_down(self) -> None:
        """Dashboard -> browser, until either side closes."""
        upstream = self.upstream
        assert upstream is not None
        while True:
            message = await upstream.read_message()
            if message is None:  # the dashboard closed it (its cluster ended)
                self.close()
                return
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                upstream.close()
                return

    async def on_message(self, message: str | bytes) -> None:
        if self.upstream is not None:
            try:
                await self.upstream.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()


__all__ = ["DashboardProxyHandler", "DashboardSocketHandler", "dashboard_base", "forwarded_query"]
