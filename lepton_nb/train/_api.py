"""``fit`` and ``run``: the two entry points of lepton_nb.train."""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lepton_nb._storage import default_checkpoints
from lepton_nb.cluster._client import client_of
from lepton_nb.cluster._worker_gpus import all_have_gpus, worker_gpus
from lepton_nb.errors import ConfigError
from lepton_nb.train._common import Payload, build_model, is_module
from lepton_nb.train._driver import new_run_id, run_ranks, workers_of
from lepton_nb.train._elastic import Elastic
from lepton_nb.train._events import EventHub, check_callbacks
from lepton_nb.train._gpu import auto_precision, warn_slow_bf16
from lepton_nb.train._lifeline import SchedulerLost
from lepton_nb.train._rendezvous import RankSpec, free_port, rank_task
from lepton_nb.train._resume import announce_resume, checkpoint_location
from lepton_nb.train.callbacks import Callback
from lepton_nb.train.config import FitConfig, check_elastic, validate_names
from lepton_nb.train.context import TrainContext
from lepton_nb.train.frameworks import FRAMEWORKS
from lepton_nb.train.strategies import STRATEGIES, resolve_strategy
from lepton_nb.train.strategy import Strategy


@dataclass
class FitResult:
    """What :func:`fit` returns: the trained model (CPU), the metric history and final metrics.

    ``history`` is a DataFrame with one row per event (schema: :mod:`lepton_nb.train.callbacks`)
    sorted by ``attempt``, ``step``, kind, ``rank``; columns ``kind, attempt, step, epoch, rank,
    world_size, time, loss, ...``.  ``world_size`` is the number of ranks that made the row;
    an elastic run has a ``world`` row at every world change (``old_size``, ``new_size``,
    ``reason``; its ``world_size`` is the new size), ordered like a ``restart`` row: after the
    step it continues from.
    """

    model: Any
    history: Any
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)


class RunResult(list[Any]):
    """The per-rank return values of ``train_fn`` (index = rank), plus ``.history``."""

    history: Any = None


def _check_data(data: Any, name: str, required: bool) -> None:
    if data is None:
        if required:
            raise ConfigError(f"{name} is required: pass a torch Dataset or a factory")
        return
    if hasattr(data, "__getitem__") and hasattr(data, "__len__"):
        if len(data) == 0:
            raise ConfigError(f"{name} is empty; pass a dataset with at least one example")
        return
    if not callable(data):
        raise ConfigError(
            f"{name} must be a torch Dataset (len + indexing) or a zero-argument "
            f"factory returning one, got {type(data).__name__}"
        )


def _elastic_of(
    min_workers: int | None, max_workers: int | None, wait_timeout_s: float, batch_size: int | None
) -> Elastic | None:
    check_elastic(min_workers, max_workers, wait_timeout_s)
    if min_workers is None and max_workers is None:
        return None
    return Elastic(min_workers or 1, max_workers, float(wait_timeout_s), batch_size)


def _check_elastic_call(cluster: Any, n_workers: int | None, checkpoint_dir: Any) -> None:
    if cluster is None:
        raise ConfigError(
            "min_workers/max_workers need a cluster: pass cluster= (a lepton_nb "
            "Cluster or a distributed.Client)"
        )
    if n_workers is not None:
        raise ConfigError(
            "n_workers fixes the world size; an elastic run (min_workers/"
            "max_workers) sizes it from the cluster, so leave n_workers=None"
        )
    if checkpoint_dir is None and default_checkpoints() is None:
        _needs_checkpoints(True, None)


def _needs_checkpoints(elastic: Elastic | bool | None, url: str | None) -> None:
    if elastic and url is None:
        raise ConfigError(
            "elastic training re-forms the world from checkpoints, and none has a place: pass "
            "checkpoint_dir=... (a path every worker can reach, or a URL such as "
            "'s3://bucket/run') or set dask config `lepton.storage.checkpoints`"
        )


def _check_ranks(client: Any, n_workers: int | None, elastic: Elastic | None = None) -> int:
    n = len(workers_of(client))
    if elastic is not None:  # fewer than min_workers now: the driver waits for them
        return max(1, elastic.world_for(n))
    if n == 0:
        from lepton_nb.errors import ClusterError

        raise ClusterError("the cluster has no workers; scale it up (cluster.scale(2))")
    if n_workers is not None and n_workers > n:
        raise ConfigError(
            f"n_workers={n_workers} ranks but the cluster has only {n} workers; "
            f"lower n_workers or cluster.scale({n_workers})"
        )
    return n_workers or n


def _gpu_info(client: Any) -> dict[str, dict[str, Any]]:
    """Each rank host's GPUs (see :func:`~lepton_nb.cluster._worker_gpus.worker_gpus`); for the
    in-process rank, this process's (NVML's view, or torch's when NVML is missing)."""
    if client is not None:
        return worker_gpus(client)
    import torch

    if not torch.cuda.is_available():
        return {"local": {"gpus": [], "visible": None}}
    from lepton_nb.cluster import detect_gpus

    gpus = [g.to_dict() for g in detect_gpus()] or [{"name": "cuda", "compute_capability": None}]
    return {"local": {"gpus": gpus, "visible": None}}


def choose_precision(cluster: Any = None) -> str:
    """The precision ``fit(precision="auto")`` picks for ``cluster`` (None: this process):
    ``"bf16"`` on Ampere-or-newer GPUs, ``"fp16"`` on older ones (bf16 is emulated there),
    ``"fp32"`` when any worker has no GPU."""
    return auto_precision(_gpu_info(client_of(cluster)))


def _check_precision(strat: Strategy, precision: str, client: Any) -> None:
    if precision not in strat.precisions:
        raise ConfigError(
            f"strategy {strat.name!r} does not support precision={precision!r}"
            f"{strat.precision_note}; choose one of {list(strat.precisions)}"
        )
    if precision == "fp32":
        return
    info = _gpu_info(client)
    if precision == "fp16" and not all_have_gpus(info):
        raise ConfigError(
            "precision='fp16' needs CUDA GPUs (GradScaler); on CPU use precision='bf16' or 'fp32'"
        )
    if precision == "bf16":
        warn_slow_bf16(info)


def _local_ranks(
    strategy: Strategy,
    payload: Any,
    hub: EventHub,
    run_id: str,
    checkpoint_dir: str | None,
    storage_options: dict[str, Any] | None = None,
) -> list[Any]:
    spec = RankSpec(
        rank=0,
        world_size=1,
        local_rank=0,
        local_world=1,
        address="local",
        host="127.0.0.1",
        master_addr="127.0.0.1",
        master_port=free_port("127.0.0.1"),
        run_id=run_id,
        attempt=0,
        checkpoint_dir=checkpoint_dir,
        storage_options=storage_options,
    )
    out = rank_task(spec, strategy, payload, sink=hub.push)
    hub.drain(force=True)
    return [out]


def _ranks(
    client: Any,
    strategy: Strategy,
    payload: Any,
    hub: EventHub,
    run_id: str,
    checkpoint_dir: str | None,
    storage_options: dict[str, Any] | None,
    **driver: Any,
) -> list[Any]:
    """Run the ranks: in this process without a cluster, else on the cluster's workers
    (``driver``: :func:`run_ranks`' keywords)."""
    if client is None:
        return _local_ranks(strategy, payload, hub, run_id, checkpoint_dir, storage_options)
    return run_ranks(
        client,
        strategy,
        payload,
        hub,
        run_id=run_id,
        checkpoint_dir=checkpoint_dir,
        storage_options=storage_options,
        **driver,
    )


def fit(
    model: Any,
    train_data: Any,
    val_data: Any = None,
    cluster: Any = None,
    epochs: int = 3,
    batch_size: int = 64,
    optimizer: str | Callable[..., Any] = "adam",
    lr: float = 1e-3,
    loss: str | Callable[[Any, Any], Any] = "cross_entropy",
    strategy: str | Strategy = "ddp",
    precision: str = "fp32",
    checkpoint_dir: str | None = None,
    max_restarts: int = 2,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    *,
    n_workers: int | None = None,
    log_every: int = 10,
    checkpoint_every: int = 50,
    compile: bool = False,
    max_staleness: int = 4,
    grad_clip: float | None = None,
    progress: bool | None = None,
    collective_timeout_s: float = 60.0,
    replace_timeout_s: float = 30.0,
    storage_options: dict[str, Any] | None = None,
    min_workers: int | None = None,
    max_workers: int | None = None,
    wait_timeout_s: float = 300.0,
) -> FitResult:
    """Train ``model`` (an nn.Module or zero-argument factory) on ``train_data`` (a Dataset of
    ``(x, y)`` or a factory building it on the worker).  ``batch_size`` is the global batch
    (split across ranks).  Without a cluster (or with ``strategy="single"``) training runs
    in-process.  ``strategy`` is a name in :data:`~lepton_nb.train.STRATEGIES` or a
    :class:`~lepton_nb.train.Strategy`.  ``precision`` is ``"fp32"``, ``"bf16"``, ``"fp16"``
    (GPUs only, loss-scaled) or ``"auto"`` (see :func:`choose_precision`).  See
    :mod:`lepton_nb.train._driver` for recovery from a lost worker.

    ``checkpoint_dir`` is a local path or an fsspec URL (``s3://bucket/run``, with
    ``storage_options=`` or the filesystem's environment variables); by default dask config
    ``lepton.storage.checkpoints``.  A checkpoint already there is resumed from.

    ``min_workers``/``max_workers`` make the fit elastic (docs/elastic.md): the world grows
    when workers join (up to ``max_workers``) and shrinks when they leave, re-formed at a
    checkpoint boundary; the global ``batch_size`` is kept (each rank takes
    ``batch_size / world``, so every world size in the range must divide it).  Below
    ``min_workers`` the fit waits ``wait_timeout_s`` for workers, then raises
    :class:`~lepton_nb.errors.TrainingError`.  Needs a ``checkpoint_dir``."""
    strat = resolve_strategy(strategy)  # before anything else, with or without a cluster
    if not (is_module(model) or callable(model)):
        raise ConfigError(
            f"model must be a torch nn.Module or a zero-argument factory, "
            f"got {type(model).__name__}"
        )
    _check_data(train_data, "train_data", True)
    _check_data(val_data, "val_data", False)
    elastic_asked = min_workers is not None or max_workers is not None
    if elastic_asked:
        _check_elastic_call(cluster, n_workers, checkpoint_dir)
    if cluster is None and not strat.in_process:
        strat = STRATEGIES.get("single")
    if precision == "auto":  # bf16 on Ampere+, fp16 on older GPUs, fp32 without GPUs
        precision = auto_precision(_gpu_info(None if strat.in_process else client_of(cluster)))
    cfg = FitConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        strategy=strat.name,
        precision=precision,
        checkpoint_dir=None if checkpoint_dir is None else str(checkpoint_dir),
        checkpoint_every=checkpoint_every,
        max_restarts=max_restarts,
        seed=seed,
        log_every=log_every,
        n_workers=n_workers,
        compile=compile,
        max_staleness=max_staleness,
        grad_clip=grad_clip,
        min_workers=min_workers,
        max_workers=max_workers,
        wait_timeout_s=wait_timeout_s,
    )
    cfg.validate()
    if elastic_asked and not strat.elastic:
        raise ConfigError(
            f"strategy {strat.name!r} is not elastic yet; use strategy='ddp' "
            "with min_workers/max_workers, or a fixed world (no min_workers/"
            "max_workers)"
        )
    validate_names(loss, optimizer)
    cbs = check_callbacks(callbacks)
    client = None if strat.in_process else client_of(cluster)
    elastic = _elastic_of(cfg.min_workers, cfg.max_workers, wait_timeout_s, batch_size)
    world = 1 if client is None else _check_ranks(client, n_workers, elastic)
    _check_precision(strat, precision, client)
    ckpt_url = checkpoint_location(
        checkpoint_dir, storage_options, None if client is None else workers_of(client)
    )
    _needs_checkpoints(elastic, ckpt_url)
    cfg.checkpoint_dir = ckpt_url
    total = None
    if hasattr(train_data, "__len__"):
        per_rank = max(1, batch_size // world)
        total = epochs * math.ceil(math.ceil(len(train_data) / world) / per_rank)
    run_id = new_run_id()
    hub = EventHub(cbs, progress, total)
    tmp = tempfile.mkdtemp(prefix="lepton-ckpt-") if cfg.checkpoint_dir is None else None
    ckpt = cfg.checkpoint_dir or tmp
    payload = Payload(model, train_data, val_data, loss, optimizer, cfg.to_dict())
    hub.start(
        {
            "strategy": strat.name,
            "world_size": world,
            "epochs": epochs,
            "run_id": run_id,
            "config": cfg.to_dict(),
        }
    )
    t0 = time.perf_counter()
    status = "failed"
    metrics: dict[str, Any] = {}
    try:
        announce_resume(hub, ckpt, storage_options)
        results = _ranks(
            client,
            strat,
            payload,
            hub,
            run_id,
            ckpt,
            storage_options,
            n_workers=n_workers,
            max_restarts=max_restarts,
            collective_timeout_s=collective_timeout_s,
            replace_timeout_s=replace_timeout_s,
            elastic=elastic,
        )
        status = "succeeded"
    except SchedulerLost:
        tmp = None  # keep the checkpoints the error message points to
        raise
    finally:
        history = hub.history()
        if status != "succeeded":
            hub.end({"status": status, "history": history, "metrics": metrics})
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    r0 = next(r["result"] for r in results if r["rank"] == 0)
    trained = build_model(model, seed)
    trained.load_state_dict(r0["state_dict"])
    trained.cpu().eval()
    steps = history[history["kind"] == "step"]
    last_loss = steps[steps["rank"] == 0]["loss"].dropna()
    metrics = {
        **r0["metrics"],
        "steps": int(r0["step"]),
        "epochs": epochs,
        "world_size": len(results),
        "strategy": strat.name,
        "restarts": int((history["kind"] == "restart").sum()),
        "time_s": time.perf_counter() - t0,
        "train_loss": float(last_loss.iloc[-1]) if len(last_loss) else None,
        "samples_per_s": float(steps.groupby("rank")["samples_per_s"].mean().sum())
        if len(steps)
        else None,
    }
    if "server" in r0:
        metrics["server"] = r0["server"]
    hub.end({"status": status, "history": history, "metrics": metrics})
    return FitResult(trained, history, metrics, cfg.to_dict())


def run(
    train_fn: Callable[[TrainContext], Any],
    cluster: Any = None,
    *,
    n_workers: int | None = None,
    max_restarts: int = 0,
    checkpoint_dir: str | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool | None = False,
    collective_timeout_s: float = 60.0,
    replace_timeout_s: float = 30.0,
    framework: str = "torch",
    storage_options: dict[str, Any] | None = None,
    rank_process: bool = True,
    min_workers: int | None = None,
    max_workers: int | None = None,
    wait_timeout_s: float = 300.0,
) -> RunResult:
    """Run ``train_fn(ctx)`` once per rank with torchrun's environment variables set
    (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), so torchrun-style code that calls
    ``dist.init_process_group("gloo")`` runs unchanged.  ``framework="tensorflow"`` runs each
    rank in its own process with ``TF_CONFIG`` set for MultiWorkerMirroredStrategy (see
    :mod:`lepton_nb.train.frameworks`).  Returns the per-rank return values.  On a cluster each
    torch rank runs in its own child process of its worker, as under torchrun
    (``rank_process=False``: in the worker's task thread, sharing its interpreter).

    ``min_workers``/``max_workers`` make the run elastic (torch only, needs
    ``checkpoint_dir``): every ``ctx.save_checkpoint`` is a boundary where the world may be
    re-formed; ``train_fn`` is then called again in the new world and resumes with
    ``ctx.load_checkpoint()`` (see docs/elastic.md)."""
    if not callable(train_fn):
        raise ConfigError(f"train_fn must be a function train_fn(ctx), got {type(train_fn)}")
    if not isinstance(max_restarts, int) or max_restarts < 0:
        raise ConfigError(f"max_restarts must be >= 0, got {max_restarts!r}")
    fw = FRAMEWORKS.get(framework)
    elastic = _elastic_of(min_workers, max_workers, wait_timeout_s, None)
    if elastic is not None:
        _check_elastic_call(cluster, n_workers, checkpoint_dir)
        if fw.name != "torch":
            raise ConfigError(
                f"min_workers/max_workers work with framework='torch' only, not {fw.name!r}"
            )
    fw.require()
    cbs = check_callbacks(callbacks)
    client = client_of(cluster)
    world = 1 if client is None else _check_ranks(client, n_workers, elastic)
    if checkpoint_dir is not None:
        checkpoint_dir = checkpoint_location(
            str(checkpoint_dir), storage_options, None if client is None else workers_of(client)
        )
    _needs_checkpoints(elastic, checkpoint_dir)
    run_id = new_run_id()
    hub = EventHub(cbs, progress, None)
    hub.start(
        {
            "strategy": "run",
            "world_size": world,
            "epochs": None,
            "run_id": run_id,
            "config": {"framework": fw.name},
        }
    )
    strat = fw.strategy(train_fn)
    if not rank_process:
        strat.rank_process = False
    status = "failed"
    try:
        with fw.checkpoint_location(checkpoint_dir) as ckpt:
            results = _ranks(
                client,
                strat,
                None,
                hub,
                run_id,
                ckpt,
                storage_options,
                n_workers=n_workers,
                max_restarts=max_restarts,
                collective_timeout_s=collective_timeout_s,
                replace_timeout_s=replace_timeout_s,
                elastic=elastic,
            )
        status = "succeeded"
    finally:
        history = hub.history()
        hub.end({"status": status, "history": history, "metrics": {}})
    out = RunResult(r["result"] for r in sorted(results, key=lambda r: r["rank"]))
    out.history = history
    return out


__all__ = ["FitResult", "RunResult", "choose_precision", "fit", "run"]
