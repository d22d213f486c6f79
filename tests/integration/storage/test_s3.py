"""Checkpoints, saved models and bad storage input against a real S3 server (moto_server)."""

from __future__ import annotations

import io
import os
import signal
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import torch
from torch.utils.data import Subset

from lepton_nb import compress, datasets
from lepton_nb.errors import CheckpointError, StorageError
from lepton_nb.models import MLP
from lepton_nb.train import Callback, fit
from lepton_nb.train.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.integration


def _prefix() -> str:
    return uuid.uuid4().hex[:8]


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("missing bucket", "bucket or container does not exist"),
        ("unreachable", "cannot reach .*check that the endpoint is reachable"),
        ("bad options", "rejected by the 's3' filesystem"),
    ],
)
def test_bad_s3_location_fails_before_training_and_writes_nothing(
    s3_server: Any, case: str, match: str
) -> None:
    prefix = _prefix()
    url = s3_server.url(prefix)
    options: dict[str, Any] | None = None
    if case == "missing bucket":
        url = f"s3://no-such-bucket-{prefix}/run"
    elif case == "unreachable":
        import socket

        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        options = {"endpoint_url": f"http://127.0.0.1:{port}"}
    elif case == "bad options":
        options = {"region": "us-east-1"}  # s3fs wants client_kwargs={"region_name": ...}
    split = datasets.digits()
    events: list[Any] = []

    class Seen(Callback):
        def on_events(self, batch: list[Any]) -> None:
            events.extend(batch)

    with pytest.raises(StorageError, match=match):
        fit(
            MLP(in_features=64),
            split.train,
            epochs=1,
            checkpoint_dir=url,
            storage_options=options,
            callbacks=[Seen()],
            progress=False,
        )
    assert events == []  # not one training step ran
    assert s3_server.keys(prefix) == []  # and nothing was left behind, not even the probe


def test_checkpoint_and_compressed_model_on_s3(s3_server: Any) -> None:
    prefix = _prefix()
    url = s3_server.url(prefix, "latest.pt")
    save_checkpoint({"step": 7, "w": torch.arange(3.0)}, url)
    assert load_checkpoint(url)["step"] == 7
    assert s3_server.keys(prefix) == [f"{s3_server.bucket}/{prefix}/latest.pt"]
    fs = s3_server.fs()
    buf = io.BytesIO()
    torch.save({"code": signal.Signals.SIGINT}, buf)  # a pickled object: hostile for us
    fs.pipe_file(f"{s3_server.bucket}/{prefix}/latest.pt", buf.getvalue())
    with pytest.raises(CheckpointError, match="refusing to load s3://"):
        load_checkpoint(url)
    fs.pipe_file(f"{s3_server.bucket}/{prefix}/latest.pt", buf.getvalue()[:40])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(url)

    q = compress.quantize(MLP(), method="dynamic-int8")
    murl = s3_server.url(prefix, "models", "mlp-int8.pt")
    compress.save(q, murl)
    back = compress.load(murl)
    x = torch.randn(4, 784)
    assert torch.allclose(q(x), back(x))


@pytest.fixture(scope="module")
def s3_cluster(s3_server: Any, launch_cluster2: Any) -> Iterator[Any]:
    # started after the S3 fixture set AWS_ENDPOINT_URL, so the workers inherit it
    with launch_cluster2() as cluster:
        yield cluster


class KillRank0At(Callback):
    """SIGKILLs rank 0's worker (the one holding the parameter server) once any rank reports
    ``step`` (in async mode rank 1 may run well ahead of rank 0) and rank 0 has reported at
    least half of it (so rank 0 has written a checkpoint)."""

    def __init__(self, client: Any, step: int) -> None:
        self.client, self.step, self.done = client, step, False
        self.rank0: str | None = None
        self.rank0_step = 0
        self.top = 0

    def on_events(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            if e["kind"] != "step":
                continue
            self.top = max(self.top, e["step"])
            if e["rank"] == 0:
                self.rank0, self.rank0_step = e["worker"], e["step"]
            if (
                not self.done
                and self.rank0
                and self.top >= self.step
                and self.rank0_step >= self.step // 2
            ):
                pid = self.client.run(os.getpid, workers=[self.rank0])[self.rank0]
                os.kill(pid, signal.SIGKILL)
                self.done = True


def paced_loss(outputs: Any, targets: Any) -> Any:
    """Cross-entropy that takes at least 30 ms a step, so a kill triggered by (slightly late)
    metric events lands mid-run however fast the machine is."""
    import time

    import torch.nn.functional as F

    time.sleep(0.03)
    return F.cross_entropy(outputs, targets)


def _ps_kwargs(s3_server: Any, cluster: Any, strategy: str) -> dict[str, Any]:
    # options passed explicitly: the shared cluster's workers may predate the S3 environment
    opts = {"endpoint_url": s3_server.endpoint, "key": "testing", "secret": "testing"}
    return dict(
        cluster=cluster,
        strategy=strategy,
        batch_size=64,
        lr=5e-3,
        log_every=2,
        checkpoint_every=5,
        checkpoint_dir=s3_server.url(_prefix(), "run"),
        storage_options=opts,
        progress=False,
    )


def _small_digits() -> tuple[Any, Any]:
    split = datasets.digits()
    return Subset(split.train, range(768)), split.test  # 12 steps of 64 per epoch


def test_ps_sync_second_fit_resumes_from_s3(s3_server: Any, cluster2: Any) -> None:
    train, test = _small_digits()
    kw = _ps_kwargs(s3_server, cluster2, "ps-sync")
    model = partial(MLP, in_features=64, hidden=32)
    first = fit(model, train, epochs=1, **kw)
    second = fit(model, train, test, epochs=3, **kw)  # more epochs: continues where it ended
    resume = second.history[second.history.kind == "resume"]
    assert int(resume.step.iloc[0]) == first.metrics["steps"] == 12
    steps = second.history[second.history.kind == "step"]
    assert steps.step.min() > 12 and second.metrics["steps"] == 36
    assert second.metrics["val_accuracy"] > 0.7


def test_ps_async_resumes_from_s3_after_losing_the_server_worker(
    s3_server: Any, s3_cluster: Any
) -> None:
    train, test = _small_digits()
    kw = {**_ps_kwargs(s3_server, s3_cluster, "ps-async"), "batch_size": 32, "loss": paced_loss}
    model = partial(MLP, in_features=64, hidden=32)
    # rank 0's worker holds the parameter server too; versions count both ranks' pushes:
    # 48 per epoch, 144 in all, so the kill lands early even if events arrive late
    killer = KillRank0At(s3_cluster.client, step=20)
    # continue on the surviving worker rather than wait for the nanny's replacement
    res = fit(model, train, test, epochs=3, callbacks=[killer], replace_timeout_s=3, **kw)
    h = res.history
    restart = h[h.kind == "restart"]
    assert killer.done and len(restart) == 1
    resumed = int(restart.step.iloc[0])
    # the last checkpoint, never 0 (it may be newer than the last step event that arrived:
    # the killed worker's last events die with it)
    assert 5 <= resumed < 144
    after = h[(h.kind == "step") & (h.attempt == 1)]
    assert after.step.min() > resumed
    assert res.metrics["val_accuracy"] > 0.7
    with pytest.raises(StorageError):  # the URL is checked before the run
        fit(model, train, epochs=1, **{**kw, "checkpoint_dir": "s3://nope-" + _prefix()})


def test_job_and_sweep_outputs_at_an_s3_url(
    s3_server: Any, cluster2: Any, tmp_home: Any, make_nb: Any
) -> None:
    import nbformat

    from lepton_nb import jobs

    prefix = _prefix()
    nb = make_nb("double.ipynb", "import lepton_nb as ln\nln.record('y', x * 2)", params="x = 1")
    with pytest.raises(StorageError, match="does not exist"):
        jobs.run(nb, {"x": 3}, output=f"s3://no-such-bucket-{prefix}/a.ipynb")
    assert jobs.list() == []  # refused before the job was recorded or started
    url = s3_server.url(prefix, "runs", "double.ipynb")
    rec = jobs.run(nb, {"x": 3}, output=url)
    assert rec.ok and rec.records == {"y": 6} and rec.output == url
    assert rec.html == url.replace(".ipynb", ".html") and jobs.get(rec.id).output == url
    fs = s3_server.fs()
    nbformat.validate(nbformat.reads(fs.cat_file(url).decode(), as_version=4))
    assert fs.exists(rec.html)

    df = jobs.sweep(
        nb, {"x": [2]}, cluster=cluster2, output_dir=s3_server.url(prefix, "sw"), progress=False
    )
    assert list(df.status) == ["succeeded"] and list(df.y) == [4]
    for out in df.output:
        assert out.startswith(s3_server.url(prefix, "sw") + "/") and fs.exists(out)
    assert not [k for k in s3_server.keys(prefix) if "probe" in k or ".tmp" in k]
