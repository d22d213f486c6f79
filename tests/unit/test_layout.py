"""One convention for public and private modules (issue 18; the rule is in docs/contributing.md).

- Every module of ``lepton_nb/`` declares ``__all__``: a literal list of names it binds.
- A module whose name has no leading underscore is public, so its package says so: its package
  ``__init__`` (or ``lepton_nb/__init__.py``) exports at least one of its names, or it is a
  submodule that ``lepton_nb.__all__`` lists, or a console-script entry point. Every other
  module is internal and is named ``_name.py``.
- What users read (notebooks, README.md, the user guides in docs/) never imports an internal
  module.

Everything is read with :mod:`ast`: nothing is imported, so a module that imports torch costs
nothing here.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from pathlib import Path

import pytest

import lepton_nb

ROOT = Path(lepton_nb.__file__).resolve().parent
REPO = ROOT.parent
# docs written for contributors name internal modules on purpose
CONTRIBUTOR_DOCS = {"architecture.md", "contributing.md"}


def _name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = getattr(node, "value", None)
            assert isinstance(value, ast.List | ast.Tuple), "__all__ must be a literal list"
            names = [e.value for e in value.elts if isinstance(e, ast.Constant)]
            assert len(names) == len(value.elts), "__all__ must list string literals only"
            return [str(n) for n in names]
    return None


def _bound(tree: ast.Module) -> set[str]:
    """Names bound at module level, including in ``if`` blocks (``if TYPE_CHECKING:`` imports
    of a lazy ``__init__``) and tuple assignments (``__getattr__, __dir__ = ...``)."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)

    visit(tree.body)
    return names


def _exported_from(package: str) -> set[str]:
    """Modules from which ``package``'s ``__init__`` imports a name it lists in ``__all__``
    (module-level or ``if TYPE_CHECKING:`` imports: a lazy ``__init__`` shows its names there)."""
    tree = _tree(package)
    public = set(_declared_all(tree) or ())
    sources: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("lepton_nb"):
            for alias in node.names:
                if (alias.asname or alias.name) in public:
                    sub = f"{node.module}.{alias.name}"
                    sources.add(sub if sub in MODULES else node.module)
    return sources


def _entry_points() -> set[str]:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    return {target.split(":")[0] for target in scripts.values()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_declares_all(module: str) -> None:
    tree = _tree(module)
    declared = _declared_all(tree)
    assert declared is not None, (
        f"{MODULES[module].relative_to(REPO)} has no __all__: list the names other modules and "
        "users may import from it (an empty list for a module run only for its effect)"
    )
    assert len(declared) == len(set(declared)), f"{module}.__all__ repeats a name"
    missing = set(declared) - _bound(tree) - {"__version__"}
    assert not missing, f"{module}.__all__ names {sorted(missing)}, which it does not define"


def test_public_modules_are_exported_and_the_rest_underscored() -> None:
    top_all = set(_declared_all(_tree("lepton_nb")) or ())
    exported = _exported_from("lepton_nb")
    entry = _entry_points()
    stray = []
    for module in MODULES:
        parent, _, leaf = module.rpartition(".")
        if not parent or leaf.startswith("_") or MODULES[module].name == "__init__.py":
            continue
        public = (
            module in exported
            or module in entry
            or (parent == "lepton_nb" and leaf in top_all)
            or (parent in MODULES and module in _exported_from(parent))
        )
        if not public:
            stray.append(module)
    assert not stray, (
        f"{stray} are named as public modules but their package exports none of their names: "
        "export the public names from the package __init__ (and list them in its __all__), or "
        "rename the module to _name.py if it is internal (docs/contributing.md, 'Public and "
        "private')"
    )


def _user_material() -> list[Path]:
    docs = [p for p in (REPO / "docs").glob("*.md") if p.name not in CONTRIBUTOR_DOCS]
    return [REPO / "README.md", *docs, *sorted((REPO / "notebooks").glob("*.ipynb"))]


def test_user_material_imports_no_internal_module() -> None:
    internal_import = re.compile(r"(?:from|import)\s+(lepton_nb(?:\.\w+)*\._\w+)")
    found = []
    for path in _user_material():
        text = path.read_text()
        if path.suffix == ".ipynb":
            text = "\n".join("".join(c["source"]) for c in json.loads(text)["cells"])
        found += [f"{path.relative_to(REPO)}: {m}" for m in internal_import.findall(text)]
    assert _user_material() and not found, found
