"""Where a job writes: checked before it starts, placed without clobbering when it ends.

Every entry point (``jobs.run``/``rerun``, the CLI, the REST API, the job service) calls
:func:`check_output` before anything runs, so a bad output is refused at once (a 4xx over REST)
instead of failing later or, worse, replacing a user's file. :func:`place` then moves the
finished notebook into place without replacing a file that appeared meanwhile.
"""

from __future__ import annotations

import os
from pathlib import Path

from lepton_nb.errors import ConfigError, JobError

# Most file systems (ext4, xfs, btrfs, APFS, NTFS) limit one path component to 255 bytes.
NAME_MAX = 255
PATH_MAX = 4096


class BadOutputError(ConfigError, JobError):
    """The output cannot be written where asked (400): wrong suffix, a folder, too long."""


class OutputExistsError(JobError):
    """The output (or its HTML copy) already exists and overwriting was not asked for (409)."""


def check_name(
    path: str | Path, what: str = "path", error: type[ConfigError] = ConfigError
) -> None:
    """Refuse a path the OS would reject (``File name too long``, NUL) with ``error``."""
    text = os.fspath(path)
    if "\x00" in text:
        raise error(f"{what} may not contain NUL characters")
    if len(text.encode("utf-8", "surrogatepass")) > PATH_MAX:
        raise error(f"{what} is longer than {PATH_MAX} bytes; use a shorter path")
    for part in Path(text).parts:
        if len(part.encode("utf-8", "surrogatepass")) > NAME_MAX:
            raise error(
                f"{what} has a component of more than {NAME_MAX} bytes ({part[:40]}...); "
                "use a shorter file or folder name"
            )


def html_path(output: Path) -> Path:
    """The HTML copy written next to an executed notebook."""
    return output.with_suffix(".html")


def partial_path(output: Path, job_id: str) -> Path:
    """The hidden file papermill writes to while the job runs (renamed into place at the end)."""
    return output.with_name(f".{output.stem}.{job_id}.partial.ipynb")


def check_output(
    notebook: Path, output: str | Path, *, overwrite: bool = False, html: bool = True
) -> Path:
    """The resolved output path, or an error saying why the job may not write there.

    Refused: a name that is not ``.ipynb`` (an ``.html`` output would be overwritten by its own
    HTML copy), the notebook itself, a folder, a path under a file, a too-long name, and (unless
    ``overwrite``) an existing output or an existing HTML neighbour.
    """
    check_name(output, "output", BadOutputError)
    try:
        out = Path(output).expanduser().resolve()
    except (OSError, RuntimeError) as e:  # a symlink loop, an unreadable parent
        raise BadOutputError(f"output {str(output)!r} cannot be resolved: {e}") from None
    if out.suffix != ".ipynb":
        raise BadOutputError(
            f"output {str(output)!r} must end in .ipynb (the executed notebook; its HTML copy "
            "is written next to it with .html)"
        )
    if out == notebook.resolve():
        raise BadOutputError(
            f"output {str(output)!r} is the notebook itself; write the executed copy elsewhere"
        )
    try:
        if out.is_dir():
            raise BadOutputError(
                f"output {str(output)!r} is a folder; give a file name such as "
                f"{(Path(output) / (notebook.stem + '-out.ipynb')).as_posix()!r}"
            )
        for parent in out.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise BadOutputError(
                        f"output {str(output)!r} lies under {str(parent)!r}, which is a file"
                    )
                break
        if overwrite:
            return out
        taken = [p for p in ((out, html_path(out)) if html else (out,)) if p.exists()]
    except OSError as e:
        raise BadOutputError(f"output {str(output)!r} cannot be checked: {e}") from None
    if taken:
        names = " and ".join(repr(str(p)) for p in taken)
        raise OutputExistsError(
            f"{names} already exist{'s' if len(taken) == 1 else ''}; choose another output, "
            'or ask to replace it (overwrite=True, --overwrite, or "overwrite": true)'
        )
    return out


def place(src: Path, dest: Path, *, overwrite: bool) -> bool:
    """Move ``src`` to ``dest``; without ``overwrite`` never replace a file that exists now.

    Returns False (and leaves ``src`` where it is) when ``dest`` appeared since the check.
    """
    if overwrite:
        os.replace(src, dest)
        return True
    try:
        os.link(src, dest)  # atomic and fails if dest exists, unlike rename
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: a small window, but no clobbering
        if dest.exists():
            return False
        os.replace(src, dest)
        return True
    src.unlink()
    return True


__all__ = [
    "BadOutputError",
    "OutputExistsError",
    "check_name",
    "check_output",
    "html_path",
    "partial_path",
    "place",
]
