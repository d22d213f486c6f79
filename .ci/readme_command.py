"""Print one of the README's two set-up commands ("demo" or "test").

The README is the single source of truth: CI and the fresh-clone check run exactly what it says.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def commands() -> list[str]:
    text = README.read_text()
    block = re.search(r"```(?:bash|sh)\n(.*?)```", text, re.S)
    if block is None:
        raise SystemExit("README.md has no ```bash block with the set-up commands")
    return [
        ln.strip() for ln in block.group(1).splitlines() if ln.strip() and not ln.startswith("#")
    ]


if __name__ == "__main__":
    cmds = commands()
    which = sys.argv[1] if len(sys.argv) > 1 else "test"
    pick = {
        "demo": [c for c in cmds if "lepton-nb demo" in c],
        "test": [c for c in cmds if "pytest" in c],
    }
    if which not in pick or len(pick[which]) != 1:
        raise SystemExit(f"expected exactly one {which!r} command in README, got {cmds}")
    print(pick[which][0])
