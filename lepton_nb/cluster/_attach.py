"""Finding and re-attaching to clusters that are already running on a deployment.

``clusters(profile=...)`` lists the running clusters a gateway profile can see;
``connect("gateway://host:port/<name>")`` re-attaches to one by name, with the credentials of
the gateway profile whose address has that host and port (or of ``profile=``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from lepton_nb.cluster._gateway import GatewaySettings, attach_gateway
from lepton_nb.cluster._handle import Cluster
from lepton_nb.cluster._profiles import get_profile, list_profiles
from lepton_nb.errors import ConfigError


def _netloc(url: Any) -> str | None:
    if not isinstance(url, str):
        return None
    parsed = urlparse(url if "://" in url else f"tcp://{url}")
    if not parsed.hostname:
        return None
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    return f"{parsed.hostname}:{parsed.port or default}"


def _gateway_profile(name: str | None, netloc: str) -> tuple[str, dict[str, Any]]:
    if name is not None:
        prof = get_profile(name)
        if prof.get("kind") != "gateway":
            raise ConfigError(f"profile {name!r} is kind {prof.get('kind')!r}, not 'gateway'")
        return name, prof
    for pname in sorted(list_profiles()):
        prof = get_profile(pname)
        if prof.get("kind") == "gateway" and netloc in (
            _netloc(prof.get("address")),
            _netloc(prof.get("proxy_address")),
        ):
            return pname, prof
    # No profile: dask-gateway's own config (gateway.auth.*) supplies the credentials.
    return "", {"kind": "gateway", "address": f"http://{netloc}"}


def connect_gateway(address: str, profile: str | None = None) -> Cluster:
    """Re-attach to the running gateway cluster named in ``gateway://host:port/<name>``."""
    parsed = urlparse(address)
    name = parsed.path.strip("/")
    netloc = _netloc(address)
    if not name or "/" in name or netloc is None:
        raise ConfigError(
            f"malformed gateway address {address!r}: expected gateway://HOST:PORT/CLUSTER-NAME "
            "(the 'address' column of lepton_nb.clusters(profile=...))"
        )
    pname, prof = _gateway_profile(profile, netloc)
    where = f"profile {pname!r}" if pname else f"gateway {netloc}"
    return attach_gateway(prof, name, where)


def clusters(profile: str) -> list[dict[str, Any]]:
    """The running clusters of a ``gateway`` profile: name, status, address (for
    :func:`lepton_nb.connect`), dashboard_link, options and start_time."""
    prof = get_profile(profile)
    if prof.get("kind") != "gateway":
        raise ConfigError(
            f"profile {profile!r} is kind {prof.get('kind', 'local')!r}: only gateway "
            "profiles can list running clusters (a factory or local cluster belongs to the "
            "process that launched it)"
        )
    return GatewaySettings(prof, f"profile {profile!r}").list()


__all__ = ["clusters", "connect_gateway"]
