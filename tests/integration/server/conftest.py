"""pytest-jupyter's fixtures and hooks for this directory only.

Registering it with ``pytest_plugins`` would make its autouse fixtures (a fresh event loop and a
ServerApp cleanup) run around every test of the suite; a directory conftest keeps them here.
"""

from pytest_jupyter.jupyter_core import *  # noqa: F403
from pytest_jupyter.jupyter_server import *  # noqa: F403
