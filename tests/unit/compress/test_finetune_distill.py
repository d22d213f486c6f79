"""Iterative structured pruning with fine-tuning, and distillation, both through train.fit."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lepton_nb import compress
from lepton_nb.datasets import Split
from lepton_nb.errors import ConfigError
from lepton_nb.models import count_parameters
from lepton_nb.train import fit

FIT = {"batch_size": 32, "progress": False, "checkpoint_every": 10**9, "log_every": 50}


def test_structured_prune_and_fine_tune_meets_issue_thresholds(
    trained_lenet: nn.Module, split: Split
) -> None:
    x = split.train.tensors[0][:1]
    pruned = compress.prune(trained_lenet, amount=0.5, structured=True, example_input=x,
                            train_data=split.train, steps=2, fine_tune_epochs=1, lr=1e-3,
                            **FIT)  # fmt: skip
    assert [s["kind"] for s in pruned._lepton_recipe] == ["prune"]
    table = compress.report({"fp32": trained_lenet, "pruned": pruned}, split.test, runs=30)
    row = table.loc["pruned"]
    assert count_parameters(trained_lenet) / count_parameters(pruned) >= 1.8
    assert row["params_x"] >= 1.8
    assert row["latency_ms"] < table.loc["fp32", "latency_ms"]
    assert row["accuracy_delta"] >= -1.0


def _student() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 10),
    )  # fmt: skip


def test_distilled_student_beats_the_same_student_trained_alone(
    trained_lenet: nn.Module, split: Split
) -> None:
    from lepton_nb.compress._data import accuracy

    # The teacher saw all 4,000 labelled images; the student gets 2,000 of them: the setting
    # where a teacher's soft targets carry knowledge the labels alone do not.
    x, y = split.train.tensors
    labelled = TensorDataset(x[:2000], y[:2000])
    torch.manual_seed(0)
    student = _student()
    assert count_parameters(trained_lenet) / count_parameters(student) >= 5
    alone = fit(student, labelled, epochs=3, lr=3e-3, seed=0, **FIT).model
    taught = compress.distill(trained_lenet, student, labelled, temperature=4.0, alpha=0.7,
                              epochs=3, lr=3e-3, seed=0, **FIT)  # fmt: skip
    acc_alone, acc_taught = accuracy(alone, split.test), accuracy(taught, split.test)
    acc_teacher = accuracy(trained_lenet, split.test)
    assert acc_taught > acc_alone
    assert acc_taught >= acc_teacher - 0.02
    assert taught.distill_metrics["epochs"] == 3 and len(taught.distill_history) > 0
    assert isinstance(taught, nn.Sequential) and not hasattr(taught, "teacher")
    assert all(p.requires_grad for p in trained_lenet.parameters())  # teacher untouched


def test_kd_loss_is_the_hinton_mix() -> None:
    s, t, y = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    loss = compress.kd_loss(temperature=2.0, alpha=0.25)
    soft = (
        nn.functional.kl_div(
            nn.functional.log_softmax(s / 2, -1),
            nn.functional.softmax(t / 2, -1),
            reduction="batchmean",
        )
        * 4
    )
    expected = 0.25 * soft + 0.75 * nn.functional.cross_entropy(s, y)
    assert torch.allclose(loss((s, t), y), expected, atol=1e-6)
    assert torch.allclose(loss(s, y), nn.functional.cross_entropy(s, y))


@pytest.mark.parametrize(("kw", "match"), [
    ({"temperature": 0.0}, "temperature"),
    ({"alpha": 1.5}, "alpha"),
    ({"loss": "mse"}, "sets the loss"),
])  # fmt: skip
def test_distill_bad_settings(trained_lenet: nn.Module, split: Split, kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        compress.distill(trained_lenet, _student(), split.train, **kw)


def test_distill_mismatched_outputs(trained_lenet: nn.Module, split: Split) -> None:
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(784, 3))
    with pytest.raises(ConfigError, match=r"teacher outputs \(8, 10\) but student outputs"):
        compress.distill(trained_lenet, wrong, split.train)
