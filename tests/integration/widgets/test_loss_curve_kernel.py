"""LossCurve in a real ipykernel, driven over the Jupyter protocol like a frontend would."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.integration

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def kernel() -> Iterator[Any]:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc: Any, code: str) -> list[dict[str, Any]]:
    """Run code; return this request's iopub messages (raises on an error in the cell)."""
    msg_id = kc.execute(code)
    msgs: list[dict[str, Any]] = []
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        msgs.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return msgs


def stdout(msgs: list[dict[str, Any]]) -> str:
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")


def test_live_widget_streams_and_is_kept_when_a_frontend_shows_it(kernel: Any) -> None:
    msgs = execute(
        kernel,
        "import lepton_nb as ln\ncurve = ln.LossCurve(redraw_interval=0)\n"
        "display(curve)\nprint(curve._view.fig.model_id)",
    )
    fig_id = stdout(msgs).strip()
    shown = [m for m in msgs if m["msg_type"] == "display_data"]
    assert len(shown) == 1 and WIDGET_MIME in shown[0]["content"]["data"]
    display_id = shown[0]["content"]["transient"]["display_id"]

    # what JupyterLab's widget manager sends when it renders a view of the figure
    view = kernel.session.msg(
        "comm_msg",
        {
            "comm_id": fig_id,
            "data": {"method": "update", "state": {"_view_count": 1}, "buffer_paths": []},
        },
    )
    kernel.shell_channel.send(view)
    msgs = execute(
        kernel,
        "for s in range(10):\n    curve.update(step=s, loss=1.0 / (s + 1))\n"
        "print(curve.frontend_attached)\ncurve.close()",
    )
    assert stdout(msgs).strip() == "True"
    # the figure's data went to the frontend over its comm while the loop ran
    fig_msgs = [
        m for m in msgs if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == fig_id
    ]
    assert len(fig_msgs) >= 10
    updates = [m for m in msgs if m["msg_type"] == "update_display_data"]
    assert len(updates) == 1 and updates[0]["content"]["transient"]["display_id"] == display_id
    data = updates[0]["content"]["data"]
    assert WIDGET_MIME in data and PLOTLY_MIME in data and "text/html" in data
    mean = next(t for t in data[PLOTLY_MIME]["data"] if t["name"] == "mean loss")
    assert mean["y"] == pytest.approx([1.0 / (s + 1) for s in range(10)])


def test_without_a_view_the_widget_is_replaced_by_the_static_figure(kernel: Any) -> None:
    execute(kernel, "import lepton_nb as ln\ncurve = ln.LossCurve()\ndisplay(curve)")
    msgs = execute(kernel, "for s in range(5):\n    curve.update(step=s, loss=float(s))")
    # no close(): the end of the cell wrote the static curves in place of the widget
    updates = [m for m in msgs if m["msg_type"] == "update_display_data"]
    assert len(updates) == 1
    data = updates[0]["content"]["data"]
    assert WIDGET_MIME not in data and PLOTLY_MIME in data
    assert execute(kernel, "curve.stats") and not [
        m for m in execute(kernel, "1") if m["msg_type"] == "update_display_data"
    ]


def test_cluster_panel_sits_under_the_curves(cluster2: Any) -> None:
    from lepton_nb.widgets import ClusterWidget, LossCurve

    curve = LossCurve(cluster=cluster2)
    try:
        assert isinstance(curve.widget.children[-1], ClusterWidget)
        assert curve.widget.children[1] is curve._view.fig
        assert "127.0.0.1" in curve.cluster_widget.table.value  # both workers are listed
    finally:
        curve.cluster_widget.close()
