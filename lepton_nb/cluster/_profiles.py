"""Named cluster profiles, stored in dask's own configuration system.

A profile lives under ``lepton.profiles.<name>`` in any dask YAML file (``~/.config/dask/``)
or in environment variables such as ``DASK_LEPTON__PROFILES__BIG__N_WORKERS=8``.  Keys:

- ``kind``: a cluster kind (``local``, ``local-cuda``, ``remote``, ``factory``, ``gateway``)
- ``address`` (remote: the scheduler; gateway: the gateway's public proxy URL), ``n_workers``,
  ``threads_per_worker``, ``memory_limit``, ``gpu``, ``host``, ``secure``
- ``tls_ca_file``, ``tls_client_cert``, ``tls_client_key`` (remote TLS)
- ``module``, ``class``, ``args``, ``kwargs`` (factory: dask-labextension's convention)
- ``auth``, ``cluster_options``, ``proxy_address``, ``public_address`` (gateway)
- ``description``: shown next to the profile in the sidebar
"""

from __future__ import annotations

import os
from typing import Any

import yaml

from lepton_nb.errors import ConfigError

_DEFAULTS = os.path.join(os.path.dirname(__file__), "lepton.yaml")
_ALLOWED = {
    "kind",
    "address",
    "n_workers",
    "threads_per_worker",
    "memory_limit",
    "gpu",
    "host",
    "secure",
    "dashboard_address",
    "timeout",
    "tls_ca_file",
    "tls_client_cert",
    "tls_client_key",
    # factory: dask-labextension's labextension.factory keys
    "module",
    "class",
    "args",
    "kwargs",
    # gateway
    "auth",
    "cluster_options",
    "proxy_address",
    "public_address",
    "description",
}


def _ensure_defaults() -> None:
    import dask.config

    with open(_DEFAULTS) as f:
        defaults = yaml.safe_load(f)
    dask.config.update_defaults(defaults)


def list_profiles() -> dict[str, dict[str, Any]]:
    import dask.config

    _ensure_defaults()
    return dict(dask.config.get("lepton.profiles", default={}) or {})


def get_profile(name: str) -> dict[str, Any]:
    profiles = list_profiles()
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "(none)"
        raise ConfigError(
            f"unknown cluster profile {name!r}; known profiles: {known}. Define it under "
            "'lepton: profiles:' in a dask config file or with DASK_LEPTON__PROFILES__... "
            "environment variables"
        )
    prof = {k.replace("-", "_"): v for k, v in (profiles[name] or {}).items()}
    unknown = set(prof) - _ALLOWED
    if unknown:
        raise ConfigError(
            f"profile {name!r} has unknown keys {sorted(unknown)}; allowed keys: {sorted(_ALLOWED)}"
        )
    return prof


def describe_profiles() -> list[dict[str, Any]]:
    """Name, kind and description of every profile, for pickers (the sidebar): never the
    settings themselves, which may hold credentials."""
    rows = []
    for name, raw in sorted(list_profiles().items()):
        prof = {k.replace("-", "_"): v for k, v in (raw or {}).items()}
        kind = prof.get("kind") or ("remote" if "address" in prof else "local")
        rows.append(
            {"name": name, "kind": str(kind), "description": str(prof.get("description") or "")}
        )
    return rows


__all__ = ["describe_profiles", "get_profile", "list_profiles"]
