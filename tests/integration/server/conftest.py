"""pytest-jupyter's fixtures and hooks for this directory only.

Registering it with ``pytest_plugins`` would make its autouse fixtures (a fresh event loop and a
ServerApp cleanup) run around every test of the suite; a directory conftest keeps them here.
"""

import asyncio
from collections.abc import Iterator

import pytest
from jupyter_core import utils as _jc_utils
from pytest_jupyter.jupyter_core import *  # noqa: F403
from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """pytest-jupyter's loop fixture, minus a stale loop left by earlier tests.

    ``ensure_event_loop`` reuses the loop remembered in jupyter_core's context variable; in the
    full suite an earlier test (an in-process papermill run, a Dask client) can leave one there
    that is marked as running, which this server can neither use nor close.
    """
    if asyncio._get_running_loop() is not None:
        # A sync fixture runs outside any loop: a "running" loop here was left marked by an
        # earlier in-process notebook run (nest-asyncio style re-entrance), not really running.
        asyncio.events._set_running_loop(None)
    stale = _jc_utils._loop.get()
    if stale is not None and (stale.is_running() or stale.is_closed()):
        _jc_utils._loop.set(None)
        asyncio.set_event_loop(None)
    loop = _jc_utils.ensure_event_loop(prefer_selector_loop=True)
    yield loop
    loop.close()
