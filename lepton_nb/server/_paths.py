"""Confine user-supplied notebook paths to the Jupyter server's root directory."""

from __future__ import annotations

from pathlib import Path

from lepton_nb.errors import ConfigError
from lepton_nb.jobs._output_paths import check_name


class PathOutsideRootError(ConfigError):
    """A path points outside the server's root directory (mapped to HTTP 403)."""


def confine(root: str | Path, user_path: str, *, must_exist: bool = True) -> Path:
    """Resolve ``user_path`` (relative to ``root``, API-style with ``/``) inside ``root``.

    Symlinks are resolved before the check and the check is by path components, not by string
    prefix, so ``/srv/root-other/x`` is refused for a root of ``/srv/root``.
    """
    root_path = Path(root).expanduser().resolve()
    check_name(user_path, f"path {user_path[:60]!r}")  # never an OSError from the OS below
    # Contents-API paths are relative; an absolute path is taken as a file-system path, which
    # passes only when it already lies under the root.
    try:
        target = (root_path / user_path).resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ConfigError(f"path {user_path[:60]!r} cannot be resolved: {e}") from None
    if not target.is_relative_to(root_path):
        raise PathOutsideRootError(
            f"path {user_path!r} is outside the server's root directory; give a path "
            "relative to the Jupyter root (as shown in the file browser)"
        )
    try:
        missing = must_exist and not target.is_file()
    except OSError as e:
        raise ConfigError(f"path {user_path[:60]!r} cannot be checked: {e}") from None
    if missing:
        raise ConfigError(
            f"notebook {user_path!r} does not exist under the server's root directory; "
            "check the path in the file browser"
        )
    return target


def relative(root: str | Path, path: str | Path | None) -> str | None:
    """``path`` as an API path relative to ``root``, or None when it lies outside it."""
    if path is None:
        return None
    root_path = Path(root).expanduser().resolve()
    target = Path(path).expanduser().resolve()
    if not target.is_relative_to(root_path):
        return None
    return target.relative_to(root_path).as_posix()


__all__ = ["PathOutsideRootError", "confine", "relative"]
