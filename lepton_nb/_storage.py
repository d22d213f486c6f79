"""Storage by URL: checkpoints, job outputs, sweep prefixes and saved models at any fsspec URL.

A :class:`Location` is a URL (``s3://bucket/run1``, ``gs://…``, ``abfs://…``, ``file:///…``, or
a plain local path) plus fsspec ``storage_options``; credentials may equally come from the
filesystem's own environment variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, …).

Writes are all-or-nothing.  The bytes are built in memory first (a failure there writes
nothing), then: a local file is written to a temporary file in the same directory, fsynced and
renamed over the target; an object store (S3, GCS, Azure) publishes an object only when its
upload completes, single PUT and multipart alike, so one put is already atomic and a temporary
key + copy would only double the bytes moved; any other fsspec filesystem gets a temporary key
renamed (``fs.mv``) over the target.

:func:`check_writable` probes a location before anything starts (write + delete a small key,
with short timeouts and no retries), so an unreachable endpoint, a missing bucket, an unknown
protocol or options the filesystem rejects are a :class:`StorageError` within seconds.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lepton_nb.errors import StorageError

# object stores: an object becomes visible only once its upload is complete
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "az", "abfss", "memory"})
# per protocol: options that make the up-front probe fail fast instead of retrying for long
PROBE_OPTIONS: dict[str, dict[str, Any]] = {
    "s3": {
        "config_kwargs": {"connect_timeout": 3, "read_timeout": 10, "retries": {"max_attempts": 1}}
    },
}
CONFIG_KEY = "lepton.storage.checkpoints"


def is_url(path: object) -> bool:
    return isinstance(path, str) and "://" in path


def _protocol(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def default_checkpoints() -> str | None:
    """The default checkpoint location from dask config (``lepton.storage.checkpoints`` or
    ``DASK_LEPTON__STORAGE__CHECKPOINTS``), or None."""
    import dask.config

    value = dask.config.get(CONFIG_KEY, default=None)
    return str(value) if value else None


@dataclass(frozen=True)
class Location:
    """A place to read and write files: ``url`` (or local path) + fsspec ``storage_options``."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        return _protocol(self.url)

    @property
    def is_local(self) -> bool:
        return self.protocol in ("file", "local")

    @property
    def local_path(self) -> Path:
        return Path(self.url.split("://", 1)[1] if "://" in self.url else self.url).expanduser()

    def fs(self, **extra: Any) -> tuple[Any, str]:
        """(fsspec filesystem, path inside it); construction errors become StorageError."""
        from fsspec.core import url_to_fs

        opts = {**self.storage_options, **extra}
        try:
            return url_to_fs(self.url, **opts)
        except ValueError as e:
            if "Protocol not known" not in str(e):
                raise StorageError(f"{self.url!r}: {e}") from None
            import fsspec

            raise StorageError(
                f"unknown storage protocol {self.protocol!r} in {self.url!r}; use a local path "
                f"or one of {', '.join(sorted(fsspec.available_protocols())[:30])}"
            ) from None
        except ImportError as e:
            raise StorageError(
                f"{self.url!r} needs an fsspec backend that is not installed: {e}"
            ) from None
        except TypeError as e:
            raise StorageError(_bad_options(self, e)) from None

    def join(self, name: str) -> Location:
        if self.is_local and not is_url(self.url):
            return Location(str(self.local_path / name), self.storage_options)
        return Location(self.url.rstrip("/") + "/" + name, self.storage_options)

    def __str__(self) -> str:
        return self.url

    def exists(self) -> bool:
        if self.is_local:
            return self.local_path.is_file()
        fs, path = self.fs()
        with _errors(self, "read"):
            return bool(fs.exists(path))

    def read_bytes(self) -> bytes:
        if self.is_local:
            return self.local_path.read_bytes()
        fs, path = self.fs()
        with _errors(self, "read"):
            return bytes(fs.cat_file(path))

    def write_bytes(self, data: bytes) -> None:
        """Write ``data`` atomically (see the module docstring)."""
        if self.is_local:
            _write_local(self.local_path, data)
            return
        fs, path = self.fs()
        with _errors(self, "write"):
            if self.protocol in ATOMIC_PUT:
                fs.pipe_file(path, data)
                return
            tmp = f"{path.rsplit('/', 1)[0]}/.{path.rsplit('/', 1)[-1]}.{uuid.uuid4().hex}.tmp"
            try:
                fs.pipe_file(tmp, data)
                fs.mv(tmp, path)
            finally:
                if fs.exists(tmp):
                    fs.rm_file(tmp)

    def remove(self) -> None:
        if self.is_local:
            self.local_path.unlink(missing_ok=True)
            return
        fs, path = self.fs()
        with _errors(self, "delete"):
            if fs.exists(path):
                fs.rm_file(path)


def location(
    url: str | os.PathLike[str] | Location, storage_options: dict[str, Any] | None = None
) -> Location:
    if isinstance(url, Location):
        return url if storage_options is None else Location(url.url, dict(storage_options))
    if storage_options is not None and not isinstance(storage_options, dict):
        raise StorageError(
            f"storage_options must be a dict of fsspec filesystem arguments, "
            f"got {type(storage_options).__name__}"
        )
    return Location(os.fspath(url), dict(storage_options or {}))


def check_writable(
    url: str | os.PathLike[str] | Location,
    storage_options: dict[str, Any] | None = None,
    *,
    what: str = "storage location",
) -> Location:
    """Probe ``url`` as a directory we will write into: write and delete one small key."""
    loc = location(url, storage_options)
    if loc.is_local:
        d = loc.local_path
        try:
            d.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".lepton-probe-", dir=d)
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            raise StorageError(
                f"{what} {loc.url!r} is not a writable directory ({e}); "
                "choose a directory you can write to"
            ) from None
        return loc
    extra = PROBE_OPTIONS.get(loc.protocol, {})
    merged = {**extra, **loc.storage_options}  # the user's own settings win
    fs, path = Location(loc.url, merged).fs(skip_instance_cache=True)
    if loc.protocol == "s3" and "retries" not in loc.storage_options:
        fs.retries = 1  # s3fs retries with backoff on top of botocore's own retries
    probe = f"{path.rstrip('/')}/.lepton-probe-{uuid.uuid4().hex[:8]}"
    with _errors(loc, "reach", what=what):
        fs.exists(probe)  # reads first: no access at all is refused before anything is written
    with _errors(loc, "write", what=what):
        fs.pipe_file(probe, b"lepton_nb write probe")
        fs.rm_file(probe)
    return loc


def _bad_options(loc: Location, e: BaseException) -> str:
    return (
        f"storage_options {sorted(loc.storage_options)} were rejected by the "
        f"{loc.protocol!r} filesystem ({e}); pass only that fsspec filesystem's arguments "
        "(see its documentation)"
    )


class _errors:
    """Turn whatever a filesystem backend raises into a StorageError that says how to fix it."""

    def __init__(self, loc: Location, op: str, what: str = "storage location") -> None:
        self.loc, self.op, self.what = loc, op, what

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, (StorageError, KeyboardInterrupt, SystemExit)):
            return False
        if not isinstance(exc, Exception):
            return False
        url, what = self.loc.url, self.what
        if isinstance(exc, FileNotFoundError):
            msg = (
                f"{what} {url!r}: the bucket or container does not exist ({exc}); create it "
                "first (e.g. `aws s3 mb s3://BUCKET`) or fix the URL"
            )
        elif isinstance(exc, PermissionError):
            msg = (
                f"{what} {url!r}: access denied ({exc}); check the credentials (environment "
                "variables such as AWS_ACCESS_KEY_ID, or storage_options={'key':…, "
                "'secret':…})"
            )
        elif isinstance(exc, TypeError):
            msg = f"{what} {url!r}: " + _bad_options(self.loc, exc)
        else:
            msg = (
                f"{what} {url!r}: cannot {self.op} ({type(exc).__name__}: {str(exc)[:300]}); "
                "check that the endpoint is reachable (AWS_ENDPOINT_URL or "
                "storage_options={'endpoint_url': …}) and the URL is right"
            )
        raise StorageError(msg) from exc


def _write_local(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:  # make the rename itself durable
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


__all__ = ["CONFIG_KEY", "Location", "check_writable", "default_checkpoints", "is_url", "location"]
