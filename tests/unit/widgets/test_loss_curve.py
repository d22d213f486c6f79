"""LossCurve as a widget and a callback, without a frontend (no kernel, no browser)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lepton_nb.errors import ConfigError, LeptonError
from lepton_nb.widgets import LossCurve
from lepton_nb.widgets._curve_figure import PLOTLY_MIME


def trace(curve: LossCurve, name: str) -> object:
    return next(t for t in curve.widget.children[1].data if t.name == name)


def feed(curve: LossCurve, steps: int, ranks: int = 2) -> None:
    curve.on_train_start({"strategy": "ddp", "world_size": ranks, "epochs": 1, "run_id": "r"})
    for s in range(steps):
        curve.on_events(
            [
                {
                    "kind": "step",
                    "rank": r,
                    "step": s,
                    "epoch": 0,
                    "time": 0.0,
                    "loss": 1.0 / (s + 1) + r,
                    "samples_per_s": 50.0,
                    "lr": 1e-3,
                }
                for r in range(ranks)
            ]
        )


def test_fit_callback_fills_the_figure_widget() -> None:
    curve = LossCurve(redraw_interval=0)
    feed(curve, 20)
    fig = curve.widget.children[1]
    names = [t.name for t in fig.data]
    assert {"rank 0", "rank 1", "mean loss", "mean loss (smoothed)", "lr"} <= set(names)
    mean = trace(curve, "mean loss")
    assert list(mean.x) == list(range(20))
    assert np.allclose(mean.y, [1.0 / (s + 1) + 0.5 for s in range(20)])
    assert trace(curve, "samples_per_s (sum of ranks)").y[-1] == 100.0
    assert curve.redraw_count >= 20
    curve.on_train_end({"status": "succeeded", "history": None, "metrics": {}})
    assert "step 19 · 2 ranks" in curve.widget.children[0].children[3].value
    assert not curve.frontend_attached  # no frontend ever reported a view


def test_redraws_are_coalesced_and_the_last_burst_is_drawn_by_the_timer() -> None:
    curve = LossCurve(redraw_interval=0.3)
    for s in range(200):
        curve.update(step=s, loss=1.0)
    assert curve.redraw_count <= 2  # 200 events, at most the first draw plus one
    deadline = time.monotonic() + 5
    while len(trace(curve, "mean loss").x) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(trace(curve, "mean loss").x) == 200


def test_unchanged_data_sends_nothing() -> None:
    curve = LossCurve(redraw_interval=0)
    curve.update(step=0, loss=1.0)
    view = curve._view
    assert view.draw(curve._data, curve.max_points, curve._status()) is False
    curve.update(step=1, loss=1.0)  # drawn by update itself
    assert view.draw(curve._data, curve.max_points, curve._status()) is False


def test_controls_smoothing_log_scale_and_ranks() -> None:
    curve = LossCurve(redraw_interval=0, smoothing=0.0)
    feed(curve, 30)
    fig = curve.widget.children[1]
    slider, log_button, ranks_button = curve.widget.children[0].children[:3]
    assert trace(curve, "mean loss (smoothed)").visible is False
    slider.value = 0.8
    smoothed = trace(curve, "mean loss (smoothed)")
    assert smoothed.visible is True and len(smoothed.y) == 30
    assert smoothed.y[-1] > trace(curve, "mean loss").y[-1]  # EMA lags a falling loss
    log_button.value = True
    assert fig.layout.yaxis.type == "log"
    ranks_button.value = False
    assert trace(curve, "rank 0").visible is False and trace(curve, "rank 1").visible is False
    ranks_button.value = True
    assert trace(curve, "rank 1").visible is True


def test_long_runs_draw_a_downsampled_view_and_keep_everything() -> None:
    curve = LossCurve(redraw_interval=60, max_points=500)
    curve.on_events(
        [{"kind": "step", "rank": 0, "step": s, "loss": 1.0 / (s + 1)} for s in range(100_000)]
    )
    curve.finalize()
    assert len(trace(curve, "mean loss").x) <= 500
    assert len(curve.history) == 100_000
    assert len(curve.figure().data[0].x) == 100_000  # the static figure is full resolution


def test_bad_input_is_counted_shown_as_gaps_and_marked() -> None:
    curve = LossCurve(redraw_interval=0)
    for s in range(10):
        curve.update(step=s, loss=float("nan") if s == 3 else 1.0, note="text")
    curve.update(step=5, loss=0.5)  # went backwards: a restart
    stats = curve.stats
    assert stats["bad_values"] == {"loss": 1, "note": 10} and stats["restarts"] == 1
    fig = curve.widget.children[1]
    assert [a.text for a in fig.layout.annotations] == ["restart"]
    y = trace(curve, "mean loss").y
    assert np.isnan(y[3]) and list(trace(curve, "mean loss").x) == [0, 1, 2, 3, 4, 5]
    curve.finalize()  # the status line is refreshed at most once a second, and at the end
    assert "1 restart" in curve.widget.children[0].children[3].value


def test_finalize_outside_a_kernel_returns_the_static_bundle() -> None:
    curve = LossCurve(redraw_interval=0)
    feed(curve, 5)
    curve.on_events(
        [{"kind": "epoch", "rank": 0, "step": 4, "epoch": 0, "val_loss": 0.4, "val_accuracy": 0.8}]
    )
    curve.on_train_end({"status": "succeeded", "history": None, "metrics": {}})
    assert curve.finalized
    bundle = curve.finalize()
    fig = bundle[PLOTLY_MIME]
    by_name = {t["name"]: t for t in fig["data"]}
    assert by_name["mean loss"]["y"] == pytest.approx([1.0 / (s + 1) + 0.5 for s in range(5)])
    assert by_name["val_loss (epoch)"]["y"] == [0.4]
    assert fig["layout"]["shapes"][0]["x0"] == 4
    assert "plotly" in bundle["text/html"] and "LossCurve(" in bundle["text/plain"]


def test_history_csv_and_html_exports(tmp_path: Path) -> None:
    curve = LossCurve(redraw_interval=0)
    feed(curve, 4)
    hist = curve.history
    assert list(hist.columns[:5]) == ["kind", "rank", "step", "epoch", "time"]
    assert len(hist) == 8 and hist["loss"].notna().all()
    back = pd.read_csv(io.StringIO(curve.to_csv(tmp_path / "h.csv")))
    assert back.equals(pd.read_csv(tmp_path / "h.csv")) and len(back) == 8
    html = curve.to_html(tmp_path / "c.html")
    assert "<html>" in html and "mean loss" in html and (tmp_path / "c.html").read_text() == html
    assert LossCurve().history.empty


def test_a_second_run_starts_afresh() -> None:
    curve = LossCurve(redraw_interval=0)
    feed(curve, 10)
    feed(curve, 3)
    assert len(trace(curve, "mean loss").x) == 3 and curve.stats["restarts"] == 0
    assert len(curve.history) == 6


@pytest.mark.parametrize(
    "kwargs", [{"smoothing": 1.0}, {"smoothing": -0.1}, {"redraw_interval": -1}, {"max_points": 2}]
)
def test_bad_configuration_says_what_to_fix(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError) as err:
        LossCurve(**kwargs)
    assert isinstance(err.value, LeptonError)
    assert next(iter(kwargs)) in str(err.value)


def test_top_level_name_resolves() -> None:
    import lepton_nb

    assert lepton_nb.LossCurve is LossCurve


def test_exports_are_safe_while_the_redraw_timer_thread_draws() -> None:
    import threading

    errors: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        curve = LossCurve(redraw_interval=0.002, smoothing=0.5)
        for s in range(400):
            curve.update(step=s, loss=1.0 / (s + 1))
            if s % 10 == 0:
                curve.figure()
                assert len(curve.history) == s + 1
        time.sleep(0.05)
        curve.finalize()
    finally:
        threading.excepthook = previous
    assert errors == []
    assert len(trace(curve, "mean loss (smoothed)").y) == 400


def test_a_failed_run_says_so_in_the_saved_figure() -> None:
    curve = LossCurve(redraw_interval=0)
    feed(curve, 3)
    curve.on_train_end({"status": "failed", "history": None, "metrics": {}})
    assert curve.figure().layout.title.text.endswith("(failed)")


def test_widgets_package_resolves_names_lazily() -> None:
    import lepton_nb.widgets as widgets

    assert set(widgets.__all__) == {"LossCurve", "ClusterWidget", "CompressionExplorer"}
    assert widgets.LossCurve is LossCurve
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = widgets.Nope


def test_constant_lr_axis_starts_at_zero() -> None:
    curve = LossCurve(redraw_interval=0)
    feed(curve, 5)  # lr is 1e-3 at every step
    fig = curve.widget.children[1]
    lr_axis = fig.layout[trace(curve, "lr").yaxis.replace("y", "yaxis")]
    # plotly would pad a constant 1e-3 by +-1 (an axis from -0.98 to 0.80); from zero it is 0..1e-3
    assert lr_axis.rangemode == "tozero" and lr_axis.title.text == "lr"


def test_world_changes_are_drawn_apart_from_restarts_and_summarised() -> None:
    curve = LossCurve(redraw_interval=0)
    curve.on_train_start({"strategy": "ddp", "world_size": 1, "run_id": "r"})
    curve.on_events(
        [
            {"kind": "step", "rank": 0, "step": s, "attempt": 0, "world_size": 1, "loss": 1.0}
            for s in range(5)
        ]
    )
    curve.on_events(
        [
            {
                "kind": "world",
                "rank": -1,
                "step": 4,
                "epoch": None,
                "time": 0.0,
                "attempt": 1,
                "old_size": 1,
                "new_size": 2,
                "restart": False,
                "reason": "worker joined: tcp://127.0.0.1:4",
            }
        ]
    )
    curve.on_events(
        [
            {"kind": "step", "rank": r, "step": s, "attempt": 1, "world_size": 2, "loss": 0.5}
            for s in range(5, 8)
            for r in range(2)
        ]
    )
    fig = curve.widget.children[1]
    assert [a.text for a in fig.layout.annotations] == ["world 1\u21922"]
    line = fig.layout.shapes[0].line
    assert (line.color, line.dash) == ("#9467bd", "dashdot")  # not the restart's red dash
    assert curve.stats["restarts"] == 0 and curve.stats["world_changes"] == 1
    curve.finalize()
    status = curve.widget.children[0].children[3].value
    assert "1 world change" in status and "2 ranks" in status and "restart" not in status
    assert "1 world change" in repr(curve)
    assert curve.figure().layout.title.text == "Training · ddp · 2"  # was "... · 1" at start
    saved = curve.figure()  # the static figure marks it the same way
    assert [a.text for a in saved.layout.annotations] == ["world 1\u21922"]
