"""What the dashboard proxy passes on: never the Jupyter token, only loopback targets."""

from __future__ import annotations

import pytest

from lepton_nb.errors import ClusterError, NotFoundError
from lepton_nb.server._dashboard import dashboard_base, forwarded_query


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        ("", ""),
        ("token=abc", ""),  # bokeh repeats the page's query on its socket
        ("a=1&token=x&b=2", "?a=1&b=2"),
        ("bokeh-autoload-element=p1&x=", "?bokeh-autoload-element=p1&x="),
    ],
)
def test_the_jupyter_token_is_not_forwarded(query: str, sent: str) -> None:
    assert forwarded_query(query) == sent


def test_only_loopback_dashboards() -> None:
    assert dashboard_base("http://127.0.0.1:8787/status", "c") == "http://127.0.0.1:8787"
    with pytest.raises(ClusterError, match="not on this host"):
        dashboard_base("http://10.0.0.5:8787/status", "c")
    with pytest.raises(NotFoundError, match="no dashboard"):
        dashboard_base(None, "c")
