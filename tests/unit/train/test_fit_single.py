"""fit/run in-process (the ``single`` strategy, what a notebook gets without a cluster)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lepton_nb import datasets
from lepton_nb.models import MLP, TinyGPT
from lepton_nb.train import Callback, TrainContext, fit, run


class Recorder(Callback):
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.end: dict[str, Any] = {}

    def on_train_start(self, info: dict[str, Any]) -> None:
        self.calls.append("start")
        assert info["strategy"] == "single" and info["world_size"] == 1

    def on_events(self, events: list[dict[str, Any]]) -> None:
        self.calls.append("events")
        self.events.extend(events)

    def on_train_end(self, info: dict[str, Any]) -> None:
        self.calls.append("end")
        self.end = info


def test_single_fit_learns_digits() -> None:
    split = datasets.digits()
    model = MLP(in_features=64, hidden=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rec = Recorder()
    res = fit(
        model,
        split.train,
        split.test,
        epochs=4,
        batch_size=32,
        lr=3e-3,
        callbacks=[rec],
        log_every=5,
    )
    assert res.metrics["val_accuracy"] >= 0.9
    assert res.metrics["strategy"] == "single" and res.metrics["restarts"] == 0
    # the caller's model is not trained in place; the result is on the CPU
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert next(res.model.parameters()).device.type == "cpu"
    h = res.history
    assert {"step", "epoch", "rank", "loss", "samples_per_s", "lr"} <= set(h.columns)
    steps = h[h.kind == "step"]
    assert steps.step.is_monotonic_increasing and steps.loss.iloc[-1] < steps.loss.iloc[0]
    epochs = h[h.kind == "epoch"]
    assert list(epochs.epoch) == [0, 1, 2, 3] and epochs.val_accuracy.notna().all()
    assert rec.calls[0] == "start" and rec.calls[-1] == "end" and "events" in rec.calls
    assert len(rec.events) == len(h) and rec.end["status"] == "succeeded"


class TwoHeads(nn.Module):
    """Like compress's distiller: a frozen teacher, forward returns a tuple while training."""

    def __init__(self) -> None:
        super().__init__()
        self.student = MLP(in_features=64, hidden=16)
        self.teacher = MLP(in_features=64, hidden=16)
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> Any:
        s = self.student(x)
        return (s, self.teacher(x)) if self.training else s


def kd(outputs: Any, y: torch.Tensor) -> torch.Tensor:
    if not isinstance(outputs, tuple):
        return F.cross_entropy(outputs, y)
    s, t = outputs
    return F.kl_div(
        F.log_softmax(s, -1), F.softmax(t, -1), reduction="batchmean"
    ) + F.cross_entropy(s, y)


def test_callable_loss_tuple_outputs_and_frozen_params() -> None:
    split = datasets.digits()
    m = TwoHeads()
    res = fit(
        m, split.train, split.test, epochs=1, loss=kd, optimizer="sgd", lr=0.05, progress=False
    )
    key = "1.weight"
    assert torch.equal(res.model.teacher.state_dict()[key], m.teacher.state_dict()[key])
    assert not torch.equal(
        res.model.student.state_dict()["1.weight"], m.student.state_dict()["1.weight"]
    )
    assert "val_accuracy" in res.metrics


def test_tinygpt_cross_entropy_flattens_time() -> None:
    corpus = datasets.text(block_size=16, max_chars=4000)
    res = fit(
        lambda: TinyGPT(corpus.vocab_size, block_size=16, n_layer=1, n_embd=32),
        corpus.train,
        corpus.val,
        epochs=1,
        batch_size=16,
        progress=False,
    )
    assert res.metrics["val_loss"] < torch.log(torch.tensor(float(corpus.vocab_size))).item()
    assert 0 <= res.metrics["val_accuracy"] <= 1


def test_run_in_process_torchrun_env() -> None:
    def train_fn(ctx: TrainContext) -> dict[str, Any]:
        import os

        import torch.distributed as dist

        dist.init_process_group("gloo")  # env:// as under torchrun
        t = torch.ones(1) * (dist.get_rank() + 1)
        dist.all_reduce(t)
        ctx.report(loss=1.5)
        return {"sum": t.item(), "rank": os.environ["RANK"], "ws": os.environ["WORLD_SIZE"]}

    out = run(train_fn)
    assert out == [{"sum": 1.0, "rank": "0", "ws": "1"}]
    assert out.history.loss.tolist() == [1.5]
    import torch.distributed as dist

    assert not dist.is_initialized()  # run destroyed the group the function left open


def test_progress_bar_when_no_widget(capsys: Any) -> None:
    split = datasets.digits()
    fit(MLP(in_features=64, hidden=16), split.train, epochs=1, batch_size=64, progress=None)
    err = capsys.readouterr().err
    assert "training" in err and "23/23" in err and "loss=" in err
    fit(MLP(in_features=64, hidden=16), split.train, epochs=1, batch_size=64, progress=False)
    assert "training" not in capsys.readouterr().err
