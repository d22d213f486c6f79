"""The ``gateway`` cluster kind: clusters from a dask-gateway server.

A profile names the gateway's public (proxy) URL as ``address``, an ``auth`` (``basic``,
``kerberos``, ``jupyterhub``, or a mapping with ``type`` plus that authenticator's keyword
arguments) and optional ``cluster_options``.  Clients talk to the proxy only: the gateway's
private API address is never needed.  Every call is probed first (a TCP connect bounded by the
profile's ``timeout``), so an unreachable gateway or a refused password is a LeptonError within
seconds, not aiohttp's five-minute default.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlparse

from lepton_nb.cluster._handle import Cluster
from lepton_nb.cluster._kinds import CLUSTER_KINDS, ClusterKind, LaunchSpec
from lepton_nb.errors import ClusterError, ConfigError, NotFoundError

T = TypeVar("T")
_AUTH_TYPES = ("basic", "kerberos", "jupyterhub")
_INSTALL = "install it with: pip install 'lepton-nb[gateway]' (dask-gateway)"


def _require_dask_gateway() -> Any:
    try:
        import dask_gateway
    except ImportError as e:
        raise ConfigError(f"the gateway cluster kind needs dask-gateway ({e}); {_INSTALL}") from e
    return dask_gateway


def _http_address(address: Any, where: str) -> str:
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(
            f"{where}: a gateway profile needs 'address', the gateway's public URL "
            "(e.g. http://gateway.example.org:8000 or, behind JupyterHub, "
            "https://hub.example.org/services/dask-gateway)"
        )
    parsed = urlparse(address.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(
            f"{where}: gateway address {address!r} must be an http:// or https:// URL, e.g. "
            "http://127.0.0.1:8000 (the proxy address, not the private API address)"
        )
    return address.strip().rstrip("/")


def _probe(address: str, timeout: float, where: str) -> None:
    parsed = urlparse(address)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout):
            pass
    except OSError as e:
        raise ClusterError(
            f"{where}: no dask-gateway answers at {address} within {timeout} s ({e}); check the "
            "address (the gateway's public proxy URL) and that the gateway server is running"
        ) from e


def _auth(value: Any, where: str) -> Any:
    if value is None:
        return None  # dask-gateway's own config (gateway.auth.type / gateway.auth.kwargs)
    from dask_gateway import auth as gw_auth

    classes = {
        "basic": gw_auth.BasicAuth,
        "kerberos": gw_auth.KerberosAuth,
        "jupyterhub": gw_auth.JupyterHubAuth,
    }
    if isinstance(value, str) and value in classes:
        return gw_auth.get_auth(value)  # keyword arguments from gateway.auth.kwargs
    if isinstance(value, dict) and value.get("type") in classes:
        kwargs = {k: v for k, v in value.items() if k != "type"}
        try:
            return classes[value["type"]](**kwargs)
        except TypeError as e:
            raise ConfigError(
                f"{where}: auth {value['type']!r} does not take {sorted(kwargs)} ({e})"
            ) from e
    raise ConfigError(
        f"{where}: auth must be one of {', '.join(_AUTH_TYPES)} or a mapping such as "
        f"{{type: basic, username: alice, password: ...}}, got {value!r}"
    )


class GatewaySettings:
    """A gateway profile, checked: everything dask-gateway's client needs."""

    def __init__(self, profile: dict[str, Any], where: str) -> None:
        _require_dask_gateway()
        self.where = where
        self.address = _http_address(profile.get("address"), where)
        self.proxy_address = profile.get("proxy_address")
        self.public_address = profile.get("public_address")
        self.auth = _auth(profile.get("auth"), where)
        self.options = dict(profile.get("cluster_options") or {})
        self.timeout = float(profile.get("timeout", 10))

    def kwargs(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "proxy_address": self.proxy_address,
            "public_address": self.public_address,
            "auth": self.auth,
        }

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn dask-gateway's and aiohttp's exceptions into LeptonErrors saying what to fix."""
        import aiohttp
        from dask_gateway.client import GatewayClusterError, GatewayServerError

        try:
            yield
        except aiohttp.ClientResponseError as e:
            if e.status in (401, 403):
                raise ClusterError(
                    f"{self.where}: the gateway at {self.address} refused the credentials "
                    f"(HTTP {e.status}) while trying to {action}; check the profile's auth "
                    "(username/password, Kerberos ticket or JupyterHub API token)"
                ) from None
            raise ClusterError(
                f"{self.where}: the gateway at {self.address} answered HTTP "
                f"{e.status} ({e.message}) while trying to {action}"
            ) from None
        except (aiohttp.ClientConnectionError, OSError, TimeoutError) as e:
            raise ClusterError(
                f"{self.where}: lost the gateway at {self.address} while trying to {action} ({e})"
            ) from e
        except (GatewayClusterError, GatewayServerError) as e:
            raise ClusterError(f"{self.where}: the gateway could not {action}: {e}") from e
        except ValueError as e:  # dask-gateway's 404 / 422: unknown name or bad options
            raise ConfigError(f"{self.where}: could not {action}: {e}") from e

    def call(self, action: str, fn: Callable[[], T]) -> T:
        _probe(self.address, self.timeout, self.where)
        with self.errors(action):
            return fn()

    def list(self) -> list[dict[str, Any]]:
        from dask_gateway import Gateway

        gateway = Gateway(**self.kwargs())
        try:
            reports = self.call("list its clusters", gateway.list_clusters)
        finally:
            _close_gateway(gateway)
        return [
            {
                "name": r.name,
                "status": r.status.name.lower(),
                "address": r.scheduler_address,
                "dashboard_link": r.dashboard_link,
                "options": dict(r.options or {}),
                "start_time": r.start_time.isoformat(),
            }
            for r in reports
        ]


def _close_gateway(gateway: Any, already_closed: bool = False) -> None:
    if not already_closed:
        gateway.close()
    # Gateway.close() is not idempotent, and Gateway.__del__ calls it again on the stopped
    # loop, which raises inside the garbage collector (seen breaking a later ast.parse).
    gateway.__dict__.pop("_loop_runner", None)


class _GatewayManager:
    """dask-gateway's GatewayCluster, with a close that can be called twice safely."""

    def __init__(self, cluster: Any) -> None:
        self._cluster = cluster
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cluster, name)

    def close(self, shutdown: bool | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._cluster.close(shutdown=shutdown)  # closes its Gateway too
        _close_gateway(self._cluster.gateway, already_closed=True)

    def shutdown(self) -> None:
        self.close(shutdown=True)


def _wrap(settings: GatewaySettings, gateway_cluster: Any, n_workers: int | None) -> Cluster:
    manager = _GatewayManager(gateway_cluster)
    try:
        if n_workers is not None:
            with settings.errors(f"scale cluster {manager.name} to {n_workers}"):
                manager.scale(n_workers)
        with settings.errors(f"connect a client to cluster {manager.name}"):
            client = manager.get_client()
    except BaseException:
        manager.close()
        raise
    return Cluster(client, manager, kind="gateway", name=manager.name)


def launch_gateway(spec: LaunchSpec) -> Cluster:
    """A new cluster on the gateway (shut down when the handle is closed)."""
    from dask_gateway import GatewayCluster

    s = GatewaySettings(spec.profile, spec.where())
    # Listing first turns a wrong password into one clear error before anything is created.
    s.list()
    manager = s.call(
        "start a new cluster",
        lambda: GatewayCluster(**s.kwargs(), shutdown_on_close=True, **s.options),
    )
    return _wrap(s, manager, spec.n_workers)


def attach_gateway(profile: dict[str, Any], name: str, where: str) -> Cluster:
    """The running gateway cluster ``name``; closing the handle leaves it running
    (``Cluster.shutdown()`` stops it)."""
    from dask_gateway import GatewayCluster

    s = GatewaySettings(profile, where)
    running = {c["name"]: c for c in s.list()}
    if name not in running or running[name]["status"] not in ("pending", "running"):
        known = ", ".join(sorted(running)) or "none"
        raise NotFoundError(
            f"{where}: no running gateway cluster named {name!r} at "
            f"{s.address} (running: {known}); list them with "
            "lepton_nb.clusters(profile=...)"
        )
    manager = s.call(
        f"connect to cluster {name}",
        lambda: GatewayCluster.from_name(name, shutdown_on_close=False, **s.kwargs()),
    )
    return _wrap(s, manager, None)


CLUSTER_KINDS.add("gateway", ClusterKind(launch_gateway, description="dask-gateway server"))

__all__ = ["GatewaySettings", "attach_gateway", "launch_gateway"]
