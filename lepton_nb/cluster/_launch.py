"""launch_cluster / connect, with a registry of cluster kinds."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

from lepton_nb.cluster import _factory, _gateway  # noqa: F401  (register their kinds)
from lepton_nb.cluster._gpu import detect_gpus
from lepton_nb.cluster._handle import Cluster, raise_beyond_devices
from lepton_nb.cluster._in_job import job_address, job_profile
from lepton_nb.cluster._kinds import CLUSTER_KINDS, ClusterKind, LaunchSpec
from lepton_nb.cluster._profiles import get_profile
from lepton_nb.errors import ClusterError, ConfigError, GPUUnavailableError

log = logging.getLogger("lepton_nb.cluster")

GPUChoice = bool | Literal["auto"]

_SCHEMES = ("tcp", "tls", "ws", "wss", "inproc", "ucx")
_ADDRESS = re.compile(
    r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://)?(?P<host>\[[^\]]+\]|[^:/]+):(?P<port>\d+)/?$"
)


def _local_cluster(spec: LaunchSpec) -> Cluster:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=spec.n_workers,
        threads_per_worker=spec.threads_per_worker,
        memory_limit=spec.memory_limit,
        processes=True,
        host=spec.host,
        dashboard_address=spec.dashboard_address,
        security=spec.security,
        **spec.extra,
    )
    return Cluster(Client(cluster, security=spec.security), cluster, kind="local", gpu=False)


def _local_cuda_cluster(spec: LaunchSpec) -> Cluster:
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError as e:
        raise ClusterError(
            "GPUs were found but dask-cuda is not importable "
            f"({e}); install it with: pip install 'lepton-nb[gpu]'"
        ) from e
    from distributed import Client

    try:
        cluster = LocalCUDACluster(
            n_workers=spec.n_workers,
            threads_per_worker=spec.threads_per_worker or 1,
            memory_limit=spec.memory_limit,
            host=spec.host,
            dashboard_address=spec.dashboard_address,
            security=spec.security,
            **spec.extra,
        )
    except ValueError as e:
        raise_beyond_devices(e, spec.n_workers)
        raise
    return Cluster(Client(cluster, security=spec.security), cluster, kind="local-cuda", gpu=True)


def _remote_cluster(spec: LaunchSpec) -> Cluster:
    return connect_profile(spec.profile)


CLUSTER_KINDS.add(
    "local", ClusterKind(_local_cluster, local=True, description="worker processes on this machine")
)
CLUSTER_KINDS.add(
    "local-cuda",
    ClusterKind(_local_cuda_cluster, local=True, description="one worker per GPU on this machine"),
)
CLUSTER_KINDS.add("remote", ClusterKind(_remote_cluster, description="a running scheduler"))


def _resolve_gpu(gpu: GPUChoice) -> bool:
    if gpu not in (True, False, "auto"):
        raise ConfigError(f"gpu must be True, False or 'auto', got {gpu!r}")
    if gpu is False:
        return False
    found = detect_gpus()
    if found:
        return True
    if gpu is True:
        raise GPUUnavailableError(
            "gpu=True but no NVIDIA GPU is visible (NVML and nvidia-smi found none; check "
            "the driver and CUDA_VISIBLE_DEVICES), or pass gpu='auto' to fall back to CPU"
        )
    log.info("no GPU found: launching a CPU cluster (LocalCluster)")
    return False


def launch_cluster(
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    gpu: GPUChoice = "auto",
    memory_limit: str | float | None = "auto",
    profile: str | None = None,
    *,
    host: str = "127.0.0.1",
    dashboard_address: str | None = None,
    secure: bool = False,
    credentials: str | Path | None = None,
    **kwargs: Any,
) -> Cluster:
    """Start a Dask cluster: by default a local one, LocalCUDACluster (one GPU per worker) when
    GPUs are found, otherwise a LocalCluster of worker processes.

    Everything local binds to ``host`` (127.0.0.1 by default); pass ``host="0.0.0.0"`` to
    expose it.  ``secure=True`` uses temporary TLS credentials, so plain-TCP clients are
    refused; ``credentials`` (a new folder) also writes them there, mode 0600, so other
    processes of the same user can ``connect(address, credentials=folder)``.  ``profile`` names
    settings under ``lepton.profiles`` in dask's config, whose ``kind`` may also be ``remote``
    (a running scheduler), ``factory`` (any Dask cluster manager class: dask-jobqueue,
    dask-kubernetes, ...) or ``gateway`` (dask-gateway); explicit arguments win over the
    profile's.  See docs/scale-out.md.  In a job run on a profile's cluster, ``profile``
    defaults to the job's and the call attaches to that cluster (see ``_in_job``).
    """
    profile = job_profile(profile)
    in_job = job_address(profile)
    if in_job is not None:
        return _attach_job_cluster(profile, in_job)
    settings: dict[str, Any] = get_profile(profile) if profile is not None else {}
    for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
    kind_name = settings.get("kind") or ("remote" if "address" in settings else None)
    if kind_name is not None and kind_name not in CLUSTER_KINDS:
        known = ", ".join(CLUSTER_KINDS.names())
        raise ConfigError(
            f"profile {profile!r} has unknown kind {kind_name!r}; use one of: {known}"
        )
    n_workers = n_workers if n_workers is not None else settings.get("n_workers")
    if kind_name is not None and not CLUSTER_KINDS.get(kind_name).local:
        spec = LaunchSpec(n_workers=n_workers, profile=settings, profile_name=profile, extra=kwargs)
        return CLUSTER_KINDS.get(kind_name).launch(spec)

    threads_per_worker = threads_per_worker or settings.get("threads_per_worker")
    if gpu == "auto" and "gpu" in settings:
        gpu = settings["gpu"]
    if memory_limit == "auto" and "memory_limit" in settings:
        memory_limit = settings["memory_limit"]
    secure = secure or bool(settings.get("secure", False))
    use_gpu = _resolve_gpu(gpu)
    kind = kind_name or ("local-cuda" if use_gpu else "local")
    if kind == "local-cuda" and not use_gpu:
        kind = "local"
    if kind == "local-cuda" and n_workers is not None and "CUDA_VISIBLE_DEVICES" not in kwargs:
        visible = detect_gpus()
        if n_workers > len(visible):  # refuse before a scheduler starts, not halfway
            raise_beyond_devices(
                ValueError(
                    "Can not scale beyond visible devices", [g.uuid or g.index for g in visible]
                ),
                n_workers,
            )
    security, owned = _security(secure, credentials)
    dashboard = dashboard_address or settings.get("dashboard_address") or f"{host}:8787"
    spec = LaunchSpec(
        n_workers,
        threads_per_worker,
        memory_limit,
        host,
        dashboard,
        security,
        settings,
        profile,
        kwargs,
    )
    try:
        cluster = CLUSTER_KINDS.get(kind).launch(spec)
    except BaseException as e:
        if owned is not None:
            from lepton_nb.cluster._tls import remove_credentials

            remove_credentials(owned)
        if isinstance(e, OSError | TimeoutError):
            raise ClusterError(f"could not start a {kind} cluster on {host}: {e}") from e
        if isinstance(e, RuntimeError):
            # Workers are spawned processes that re-import the script's __main__; an
            # unguarded script (or code read from stdin) makes every worker fail to start.
            raise ClusterError(
                f"the {kind} cluster's workers failed to start ({e}). In a script, put the "
                'code that launches the cluster under `if __name__ == "__main__":`; '
                "otherwise check the worker logs above"
            ) from e
        raise
    if credentials is not None or owned is not None:
        cluster.credentials = Path(owned or credentials)  # type: ignore[arg-type]
        cluster.owned_credentials = owned
    _record(cluster)
    return cluster


def _security(secure: bool, credentials: str | Path | None) -> tuple[Any, Path | None]:
    """The cluster's ``Security`` and the credentials folder lepton_nb made for it (if any).

    ``secure=True`` writes its key pair to the Jupyter runtime dir (0700) rather than keeping
    it in memory, so the ledger can name the folder and the Jupyter server (same user) can
    reach the cluster to stop it. The folder goes when the cluster closes."""
    if credentials is not None:
        from lepton_nb.cluster._tls import create_credentials

        return create_credentials(credentials), None
    if not secure:
        return None, None
    import uuid

    from lepton_nb.cluster._tls import create_credentials, runtime_folder

    folder = runtime_folder(f"k{uuid.uuid4().hex[:11]}")
    try:
        return create_credentials(folder), folder
    except OSError as e:  # no writable runtime dir: in-memory keys (the server cannot stop it)
        from distributed.security import Security

        log.warning("could not write TLS credentials to %s (%s); keeping them in memory", folder, e)
        return Security.temporary(), None


def _attach_job_cluster(profile: str | None, address: str) -> Cluster:
    """The cluster a job runs on (see ``_in_job``), with the profile's TLS files if known."""
    try:
        settings = get_profile(profile) if profile is not None else {}
    except ConfigError:  # the worker's dask config need not define the runner's profiles
        settings = {}
    if settings.get("address") and settings.get("kind", "remote") == "remote":
        return connect_profile(settings)
    return connect(address)


def _record(cluster: Cluster) -> None:
    """List the cluster in the per-user ledger (the sidebar shows every cluster)."""
    from lepton_nb.cluster import _ledger

    try:
        _ledger.register(cluster)
    except (OSError, ClusterError) as e:  # a read-only home must not stop a launch
        log.warning("could not record the cluster in %s: %s", _ledger.ledger_dir(), e)


def _normalise_address(address: str) -> str:
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(
            f"a scheduler address must be a string like 'tcp://127.0.0.1:8786', got {address!r}"
        )
    m = _ADDRESS.match(address.strip())
    if m is None:
        raise ConfigError(
            f"malformed scheduler address {address!r}: expected SCHEME://HOST:PORT, "
            "e.g. 'tcp://127.0.0.1:8786' (the address `dask scheduler` prints)"
        )
    scheme = (m.group("scheme") or "tcp").lower()
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"unknown scheme {scheme!r} in scheduler address {address!r}; use one of "
            f"{', '.join(s + '://' for s in _SCHEMES)}"
        )
    return f"{scheme}://{m.group('host')}:{m.group('port')}"


def connect(
    address: Any,
    security: Any = None,
    timeout: float = 10,
    *,
    credentials: str | Path | None = None,
    profile: str | None = None,
) -> Cluster:
    """Attach to a running Dask scheduler (dask CLI, dask-kubernetes, dask-jobqueue, ...).

    ``address`` is ``'tcp://host:port'`` (or ``tls://`` with ``security``, or with
    ``credentials``: the folder of TLS credentials a cluster launched by the Jupyter server
    wrote), a dask cluster object (e.g. a ``KubeCluster``), which then lets
    ``scale``/``adapt`` work too, or ``'gateway://host:port/<name>'`` to re-attach to a running
    dask-gateway cluster by name (credentials from ``profile``, or from the gateway profile
    with that host and port).
    """
    from distributed import Client

    if isinstance(address, str) and address.strip().lower().startswith("gateway://"):
        from lepton_nb.cluster._attach import connect_gateway

        return connect_gateway(address.strip(), profile)
    if credentials is not None:
        from lepton_nb.cluster._tls import security_from

        security = security_from(credentials)
    if hasattr(address, "scheduler_address") and hasattr(address, "scale"):
        return Cluster(Client(address, security=security, timeout=timeout), address, kind="remote")
    addr = _normalise_address(address)
    if addr.startswith("tls://") and security is None:
        raise ConfigError(
            f"{addr} uses TLS: pass credentials=<folder> (clusters launched from the Lepton "
            "sidebar: use its connect code) or security=distributed.security.Security("
            "tls_ca_file=..., tls_client_cert=..., tls_client_key=..., require_encryption=True)"
        )
    try:
        client = Client(addr, security=security, timeout=timeout)
    except (OSError, TimeoutError) as e:
        raise ClusterError(
            f"could not reach a Dask scheduler at {addr} within {timeout} s ({e}). Check that "
            "the scheduler is running (e.g. `dask scheduler --host 127.0.0.1`), that the "
            "address and port are right, and that TLS settings match the scheduler's"
        ) from e
    return Cluster(client, None, kind="remote")


def profile_security(settings: dict[str, Any]) -> Any:
    """The ``Security`` a remote profile's TLS keys describe, or None (plain TCP)."""
    if not settings.get("tls_ca_file"):
        return None
    from distributed.security import Security

    return Security(
        tls_ca_file=settings["tls_ca_file"],
        tls_client_cert=settings.get("tls_client_cert"),
        tls_client_key=settings.get("tls_client_key"),
        require_encryption=True,
    )


def connect_profile(settings: dict[str, Any]) -> Cluster:
    if "address" not in settings:
        raise ConfigError("a remote profile needs an 'address' key (e.g. tcp://host:8786)")
    return connect(
        settings["address"],
        security=profile_security(settings),
        timeout=settings.get("timeout", 10),
    )


__all__ = [
    "GPUChoice",
    "connect",
    "connect_profile",
    "launch_cluster",
    "profile_security",
]
