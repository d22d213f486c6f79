"""TLS credentials for clusters the Jupyter server launches, kept where only their user can read.

A cluster started without TLS accepts any connection to its scheduler port, and a Dask client
can run arbitrary code on the workers: on a shared machine, any local user could run code as
the server's user. Clusters launched through the REST API therefore use TLS with mutual
authentication. Their key and certificate (one self-signed pair per cluster, as
``distributed.security.Security.temporary()`` makes) are written to a folder of the user's
Jupyter runtime directory with mode 0700 and files 0600; a client needs both files to connect,
so only the user (and root) can. "Insert connect code" passes that folder to
:func:`lepton_nb.connect` (``credentials=...``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from lepton_nb.errors import ConfigError

CERT, KEY = "cert.pem", "key.pem"
RUNTIME_SUBDIR = "lepton-clusters"  # <Jupyter runtime dir>/lepton-clusters/<cluster id>/


def _write_private(path: Path, text: str) -> None:
    # created 0600 from the start: no window in which another user could read the key
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def create_credentials(folder: str | Path) -> Any:
    """A fresh key pair written to ``folder`` (0700, files 0600); returns its Security."""
    from distributed.security import Security

    path = Path(folder)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.mkdir(mode=0o700)  # a new folder each time: never reuse or overwrite credentials
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
    temp = Security.temporary()
    _write_private(path / CERT, temp.tls_client_cert)
    _write_private(path / KEY, temp.tls_client_key)
    return security_from(path)


def security_from(folder: str | Path) -> Any:
    """The ``Security`` that connects with the credentials in ``folder`` (TLS required)."""
    from distributed.security import Security

    path = Path(folder).expanduser()
    cert, key = path / CERT, path / KEY
    if not (cert.is_file() and key.is_file()):
        raise ConfigError(
            f"no TLS credentials in {path} (expected {CERT} and {KEY}); use the connect code "
            "the Lepton sidebar inserts for this cluster, or the folder its launch reported"
        )
    for f in (cert, key):
        if not os.access(f, os.R_OK):
            raise ConfigError(
                f"the TLS credentials in {path} cannot be read by this user ({f.name}); only "
                "the user who launched the cluster can connect to it"
            )
    files = {"cert": str(cert), "key": str(key)}
    return Security(
        require_encryption=True,
        tls_ca_file=files["cert"],
        tls_client_cert=files["cert"],
        tls_client_key=files["key"],
        tls_scheduler_cert=files["cert"],
        tls_scheduler_key=files["key"],
        tls_worker_cert=files["cert"],
        tls_worker_key=files["key"],
    )


def remove_credentials(folder: str | Path | None) -> None:
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def runtime_folder(cluster_id: str, runtime_dir: str | Path | None = None) -> Path:
    """Where the credentials of server cluster ``cluster_id`` live."""
    if runtime_dir is None:
        from jupyter_core.paths import jupyter_runtime_dir

        runtime_dir = jupyter_runtime_dir()
    return Path(runtime_dir) / RUNTIME_SUBDIR / cluster_id


__all__ = [
    "RUNTIME_SUBDIR",
    "create_credentials",
    "remove_credentials",
    "runtime_folder",
    "security_from",
]
