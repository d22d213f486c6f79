"""DDP and parameter-server training of LeNet5 on real 2-worker Dask clusters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import Subset

from lepton_nb import datasets
from lepton_nb.errors import ClusterError, ConfigError
from lepton_nb.models import LeNet5
from lepton_nb.train import Callback, fit

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def mnist() -> datasets.Split:
    return datasets.mnist()


class Collect(Callback):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.ended = ""

    def on_events(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)

    def on_train_end(self, info: dict[str, Any]) -> None:
        self.ended = info["status"]


@pytest.mark.parametrize(
    ("strategy", "epochs", "threshold"),
    [("ddp", 4, 0.95), ("ps-sync", 4, 0.95), ("ps-async", 3, 0.93)],
)
def test_lenet_mnist_accuracy(
    cluster2: Any, mnist: datasets.Split, strategy: str, epochs: int, threshold: float
) -> None:
    cb = Collect()
    res = fit(
        LeNet5,
        mnist.train,
        mnist.test,
        cluster=cluster2,
        epochs=epochs,
        batch_size=64,
        lr=2e-3,
        strategy=strategy,
        callbacks=[cb],
        progress=False,
    )
    assert res.metrics["val_accuracy"] >= threshold, res.metrics
    assert res.metrics["world_size"] == 2 and res.metrics["restarts"] == 0
    h = res.history
    assert set(h[h.kind == "step"]["rank"]) == {0, 1}
    assert len(h[h.kind == "epoch"]) == epochs
    # every event reached the callback through log_event -> subscribe_topic
    assert len(cb.events) == len(h) and cb.ended == "succeeded"
    # the returned model really is the trained one
    x, y = mnist.test.tensors
    with torch.no_grad():
        acc = (res.model(x).argmax(1) == y).float().mean().item()
    assert abs(acc - res.metrics["val_accuracy"]) < 1e-6
    if strategy == "ps-async":
        server = res.metrics["server"]
        assert server["updates"] > 0 and server["max_staleness"] >= 0
        assert h[h.kind == "step"]["staleness"].notna().all()


def test_single_and_ddp_same_trajectory(cluster2: Any, mnist: datasets.Split) -> None:
    data = Subset(mnist.train, range(768))
    kw = dict(epochs=1, batch_size=64, lr=2e-3, log_every=1, progress=False, seed=3)
    torch.manual_seed(0)
    model = LeNet5()
    single = fit(model, data, cluster=None, **kw)  # type: ignore[arg-type]
    ddp = fit(model, data, cluster=cluster2, strategy="ddp", **kw)  # type: ignore[arg-type]
    s = single.history.query("kind == 'step'").set_index("step")["loss"]
    d = ddp.history.query("kind == 'step'").groupby("step")["loss"].mean()
    assert len(s) == len(d) == 12
    np.testing.assert_allclose(d.to_numpy(), s.to_numpy(), rtol=2e-3, atol=2e-4)
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(ddp.model.state_dict()[k], v, rtol=1e-3, atol=1e-4)


def test_too_many_ranks_and_closed_cluster(cluster2: Any, mnist: datasets.Split) -> None:
    with pytest.raises(ConfigError, match="only 2 workers"):
        fit(LeNet5(), mnist.train, cluster=cluster2, n_workers=3, progress=False)

    class Closed:
        @property
        def client(self) -> Any:
            raise ClusterError("this cluster is closed; launch a new one")

    with pytest.raises(ClusterError, match="closed"):
        fit(LeNet5(), mnist.train, cluster=Closed(), progress=False)
