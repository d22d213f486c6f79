"""Events in -> traces out, for the pure model behind LossCurve (no plotly, no frontend)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lepton_nb.widgets._curve_data import CurveData, TraceInfo, to_number
from lepton_nb.widgets._curve_series import Series, StepAgg, downsample, ema


def step(rank: int, s: int, **metrics: object) -> dict[str, object]:
    return {"kind": "step", "rank": rank, "step": s, "epoch": 0, "time": 0.0, **metrics}


def info(data: CurveData, key: str) -> TraceInfo:
    return next(t for t in data.traces() if t.key == key)


def test_per_rank_lines_and_mean_per_step() -> None:
    data = CurveData()
    data.ingest([step(r, s, loss=float(s + 10 * r)) for s in range(5) for r in range(3)])
    keys = [t.key for t in data.traces()]
    assert keys[:3] == ["rank0:loss", "rank1:loss", "rank2:loss"]
    assert "mean:loss" in keys and "ema:loss" in keys
    x, y = data.xy(info(data, "mean:loss"))
    assert x.tolist() == [0, 1, 2, 3, 4]
    assert y.tolist() == [s + 10.0 for s in range(5)]  # mean of s, s+10, s+20
    _, y1 = data.xy(info(data, "rank1:loss"))
    assert y1.tolist() == [s + 10.0 for s in range(5)]
    assert data.ranks == [0, 1, 2] and data.last_step == 4 and data.n_rows == 15


def test_async_ranks_out_of_order_steps_are_merged_sorted() -> None:
    data = CurveData()
    data.ingest(
        [step(0, 0, loss=1.0), step(0, 2, loss=3.0), step(1, 1, loss=2.0), step(1, 2, loss=5.0)]
    )
    x, y = data.xy(info(data, "mean:loss"))
    assert x.tolist() == [0, 1, 2] and y.tolist() == [1.0, 2.0, 4.0]


def test_bad_values_are_gaps_and_counted_never_a_crash() -> None:
    data = CurveData()
    data.ingest(
        [
            step(0, 0, loss=1.0),
            step(0, 1, loss=float("nan")),
            step(0, 2, loss="oops"),
            step(0, 3, loss=float("inf")),
            step(0, 4, loss=None),
            step(0, 5, loss=2.0),
            {"kind": "step", "rank": 0, "step": "x", "loss": 1.0},
        ]
    )
    assert data.bad_values["loss"] == 4 and data.bad_values["step"] == 1
    _, y = data.xy(info(data, "rank0:loss"))
    assert y[0] == 1.0 and y[-1] == 2.0 and np.isnan(y[1:5]).all()
    _, mean = data.xy(info(data, "mean:loss"))
    assert np.isnan(mean[1:5]).all()  # an all-bad step is a gap in the mean, not dropped
    assert data.n_rows == 6


def test_unknown_keys_become_new_traces_on_the_second_panel() -> None:
    data = CurveData()
    data.ingest([step(0, 0, loss=1.0, grad_norm=3.0), step(1, 0, loss=1.0, grad_norm=5.0)])
    grad = info(data, "step:grad_norm")
    assert grad.panel == 2 and grad.role == "metric"
    assert data.xy(grad)[1].tolist() == [4.0]


def test_throughput_is_summed_over_ranks_and_lr_averaged() -> None:
    data = CurveData()
    data.ingest([step(r, 0, samples_per_s=100.0, lr=0.1) for r in range(4)])
    assert data.xy(info(data, "step:samples_per_s"))[1].tolist() == [400.0]
    lr = info(data, "step:lr")
    assert lr.secondary and data.xy(lr)[1].tolist() == [0.1]


def test_steps_going_backwards_mark_a_restart_and_replace_redone_steps() -> None:
    data = CurveData()
    data.ingest([step(r, s, loss=1.0) for s in range(10) for r in range(2)])
    # recovery from a checkpoint at step 6: both ranks redo 6.. with new values
    data.ingest([step(r, s, loss=2.0) for s in range(6, 12) for r in range(2)])
    assert [(m.step, m.kind) for m in data.marks] == [(6, "restart")]
    x, y = data.xy(info(data, "mean:loss"))
    assert x.tolist() == list(range(12))
    assert y.tolist() == [1.0] * 6 + [2.0] * 6
    assert data.n_rows == 32  # the history keeps both attempts


def test_restart_event_marks_once_with_its_attempt() -> None:
    data = CurveData()
    data.ingest([step(0, s, loss=1.0) for s in range(5)])
    data.ingest(
        [
            {"kind": "restart", "rank": 0, "step": 3, "attempt": 1, "reason": "died"},
            step(0, 3, loss=0.5),
        ]
    )
    assert [m.label for m in data.marks] == ["restart (attempt 1)"]
    assert data.restarts == 1


def test_epoch_events_give_val_traces_and_epoch_marks() -> None:
    data = CurveData()
    data.ingest([step(0, s, loss=1.0) for s in range(10)])
    data.ingest(
        [
            {
                "kind": "epoch",
                "rank": r,
                "step": 9,
                "epoch": 0,
                "val_loss": 0.5 + r,
                "val_accuracy": 0.9,
            }
            for r in range(2)
        ]
    )
    assert [m.label for m in data.marks] == ["epoch 0"]
    val = info(data, "epoch:val_loss")
    assert val.role == "epoch" and data.xy(val)[1].tolist() == [1.0]
    assert info(data, "epoch:val_accuracy").secondary


def test_smoothing_applies_to_rank_and_smoothed_lines_only() -> None:
    data = CurveData()
    data.ingest([step(0, s, loss=float(s % 2)) for s in range(100)])
    _, raw = data.xy(info(data, "mean:loss"), smoothing=0.9)
    _, smooth = data.xy(info(data, "ema:loss"), smoothing=0.9)
    assert raw.tolist() == [float(s % 2) for s in range(100)]
    assert abs(smooth[-1] - 0.5) < 0.1 and smooth.std() < raw.std()


def test_ema_is_debiased_and_skips_gaps() -> None:
    y = np.array([2.0, 2.0, np.nan, 2.0])
    out = ema(y, 0.9)
    assert np.allclose(out[[0, 1, 3]], 2.0) and np.isnan(out[2])
    assert np.isnan(ema(np.array([np.nan]), 0.5)).all()


def test_downsample_keeps_envelope_endpoints_and_limit() -> None:
    x = np.arange(100_000, dtype=float)
    y = np.sin(x / 1000.0)
    y[54_321] = 50.0  # one spike must survive
    xs, ys = downsample(x, y, 2000)
    assert len(xs) <= 2000 and xs[0] == 0 and xs[-1] == 99_999
    assert np.all(np.diff(xs) >= 0)
    assert ys.max() == 50.0 and abs(ys.min() - y.min()) < 1e-9
    small_x, small_y = downsample(x[:10], y[:10], 2000)
    assert small_x.tolist() == x[:10].tolist() and small_y.tolist() == y[:10].tolist()


def test_long_run_draws_downsampled_view_but_keeps_full_history() -> None:
    data = CurveData()
    data.ingest([step(0, s, loss=1.0 / (s + 1)) for s in range(100_000)])
    x, _ = data.xy(info(data, "rank0:loss"), smoothing=0.6, max_points=2000)
    assert len(x) <= 2000
    assert len(data.xy(info(data, "mean:loss"))[0]) == 100_000


def test_series_and_agg_primitives() -> None:
    s = Series()
    for i in range(1000):
        s.append(i, i * 2.0)
    xs, ys = s.truncate_from(990)
    assert ys.tolist() == [2.0 * i for i in range(990, 1000)]
    assert s.n == 990 and xs.tolist() == list(range(990, 1000))
    agg = StepAgg()
    for x in (5, 1, 3, 3, 9):
        agg.add(x, 1.0)
    agg.remove(3, 1.0)
    xs2, means = agg.means()
    assert xs2.tolist() == [1, 3, 5, 9] and means.tolist() == [1.0] * 4
    assert agg.sums()[1].tolist() == [1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1.0), (True, 1.0), ("1", None), (math.nan, None), (None, None), ([1], None)],
)
def test_to_number(value: object, expected: float | None) -> None:
    assert to_number(value) == expected


def test_fit_recovery_sequence_marks_one_restart_for_all_ranks() -> None:
    data = CurveData()
    data.ingest([step(r, s, loss=1.0, attempt=0) for s in range(10) for r in range(2)])
    # fit's client pushes a restart marker (rank -1), then both ranks resume from step 4
    data.ingest([{"kind": "restart", "rank": -1, "step": 9, "attempt": 1, "reason": "lost"}])
    data.ingest([step(r, s, loss=2.0, attempt=1) for s in range(4, 8) for r in range(2)])
    assert [(m.step, m.label) for m in data.marks] == [(9, "restart (attempt 1)")]
    x, y = data.xy(info(data, "mean:loss"))
    assert x.tolist() == list(range(8)) and y.tolist() == [1.0] * 4 + [2.0] * 4
    assert "step:attempt" not in [t.key for t in data.traces()]


def test_new_attempt_without_going_back_still_counts_as_restart() -> None:
    data = CurveData()
    data.ingest([step(0, s, loss=1.0, attempt=0) for s in range(5)])
    data.ingest([step(0, 5, loss=2.0, attempt=1)])
    assert data.restarts == 1 and data.marks[0].step == 5


def test_incremental_ema_matches_a_full_recompute() -> None:
    from lepton_nb.widgets._curve_series import EmaCache

    rng = np.random.default_rng(0)
    y = rng.normal(size=3000)
    y[rng.integers(0, 3000, 200)] = np.nan
    cache = EmaCache()
    for n in (1, 2, 50, 51, 1000, 3000):
        assert np.allclose(cache.smooth(y[:n], 0.9, 0), ema(y[:n], 0.9), equal_nan=True)
    tail = y.copy()
    tail[-1] = 5.0  # the last point updated in place (another rank reported the same step)
    assert np.allclose(cache.smooth(tail, 0.9, 0), ema(tail, 0.9), equal_nan=True)
    assert np.allclose(cache.smooth(y[:10] * 2, 0.9, 1), ema(y[:10] * 2, 0.9), equal_nan=True)
    assert np.allclose(cache.smooth(y, 0.5, 1), ema(y, 0.5), equal_nan=True)


def test_smoothed_mean_stays_right_across_a_restart() -> None:
    data = CurveData()
    data.ingest([step(r, s, loss=float(s)) for s in range(50) for r in range(2)])
    smoothed = info(data, "ema:loss")
    data.xy(smoothed, smoothing=0.8)
    data.ingest([step(r, s, loss=-float(s)) for s in range(30, 60) for r in range(2)])
    _, y = data.xy(smoothed, smoothing=0.8)
    expected = np.array([float(s) for s in range(30)] + [-float(s) for s in range(30, 60)])
    assert np.allclose(y, ema(expected, 0.8))


def world(attempt: int, old: int, new: int, s: int, reason: str = "worker joined") -> dict:
    return {
        "kind": "world",
        "rank": -1,
        "step": s,
        "epoch": None,
        "time": 0.0,
        "attempt": attempt,
        "old_size": old,
        "new_size": new,
        "reason": reason,
        "restart": False,
    }


def test_world_changes_are_marked_and_not_counted_as_restarts() -> None:
    data = CurveData()
    data.ingest([step(0, s, loss=1.0, attempt=0, world_size=1) for s in range(6)])
    data.ingest([world(1, 1, 2, 5)])  # grow at the step-5 checkpoint
    data.ingest(
        [step(r, s, loss=0.5, attempt=1, world_size=2) for s in range(6, 9) for r in range(2)]
    )
    data.ingest([world(2, 2, 1, 7, "worker lost: tcp://x")])  # shrink back to step 7
    data.ingest([step(1, 9, loss=9.0, attempt=1, world_size=2)])  # the old world's straggler
    data.ingest([step(0, s, loss=0.25, attempt=2, world_size=1) for s in range(8, 10)])
    assert [(m.step, m.label, m.kind) for m in data.marks] == [
        (5, "world 1\u21922", "world"),
        (7, "world 2\u21921", "world"),
    ]
    assert data.restarts == 0 and data.world_changes == 2 and data.world_size == 1
    # the shrink redid step 8: its new value replaced the old, nothing was counted bad
    x, y = data.xy(info(data, "mean:loss"))
    assert x.tolist() == list(range(10)) and y.tolist()[7:] == [0.5, 0.25, 0.25]
    assert not data.bad_values
    assert {t.key for t in data.traces()} == {"rank0:loss", "rank1:loss", "mean:loss", "ema:loss"}
    assert data.columns["reason"][6] == "worker joined"  # kept in the history


def test_the_worker_key_dask_adds_is_not_a_bad_value() -> None:
    data = CurveData()
    # Scheduler.log_worker_event adds the sending worker's address to every relayed event
    data.ingest([step(0, 1, loss=1.0, worker="tcp://127.0.0.1:4000")])
    assert not data.bad_values and "step:worker" not in [t.key for t in data.traces()]
    assert data.columns["worker"] == ["tcp://127.0.0.1:4000"]
