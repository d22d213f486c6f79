"""Notebook paths are confined to the server root by path components, not string prefixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lepton_nb.errors import ConfigError
from lepton_nb.server._paths import PathOutsideRootError, confine, relative


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    root = tmp_path / "root_dir"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "nb.ipynb").write_text("{}")
    sibling = tmp_path / "root_dir-other"
    sibling.mkdir()
    (sibling / "x.ipynb").write_text("{}")
    return root


def test_relative_paths_resolve_inside(layout: Path) -> None:
    assert confine(layout, "sub/nb.ipynb") == layout / "sub" / "nb.ipynb"
    assert confine(layout, "sub/../sub/nb.ipynb") == layout / "sub" / "nb.ipynb"


@pytest.mark.parametrize(
    "path",
    ["../root_dir-other/x.ipynb", "sub/../../root_dir-other/x.ipynb", "../../etc/passwd"],
)
def test_dot_dot_escapes_are_refused(layout: Path, path: str) -> None:
    with pytest.raises(PathOutsideRootError, match="outside the server's root"):
        confine(layout, path)


def test_sibling_prefix_absolute_path_is_refused(layout: Path) -> None:
    sibling = str(layout.parent / "root_dir-other" / "x.ipynb")
    assert sibling.startswith(str(layout))  # the trap a string-prefix check falls into
    with pytest.raises(PathOutsideRootError):
        confine(layout, sibling)


def test_absolute_path_inside_root_is_accepted(layout: Path) -> None:
    inside = layout / "sub" / "nb.ipynb"
    assert confine(layout, str(inside)) == inside


def test_symlink_out_of_root_is_refused(layout: Path) -> None:
    (layout / "link").symlink_to(layout.parent / "root_dir-other")
    with pytest.raises(PathOutsideRootError):
        confine(layout, "link/x.ipynb")


def test_missing_notebook_is_a_config_error(layout: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as info:
        confine(layout, "sub/missing.ipynb")
    assert not isinstance(info.value, PathOutsideRootError)
    assert confine(layout, "out/new.ipynb", must_exist=False) == layout / "out" / "new.ipynb"


def test_relative(layout: Path) -> None:
    assert relative(layout, layout / "sub" / "nb.ipynb") == "sub/nb.ipynb"
    assert relative(layout, layout.parent / "root_dir-other" / "x.ipynb") is None
    assert relative(layout, None) is None
