"""One command for a fresh NVIDIA GPU machine: installs what is missing, then checks lepton_nb's
GPU paths and measures them, in under 10 minutes.

    python benchmarks/gpu_check.py            # checks + figures, JSON in benchmarks/results/
    python benchmarks/gpu_check.py --tests    # ... then pytest tests/gpu with the time left

Checks (issue 19 items in brackets): LocalCUDACluster with one worker per GPU reporting its GPU
[1]; torchrun-style ``set_device(LOCAL_RANK)`` + NCCL all-reduce on distinct GPUs [2]; ranks
spread over GPUs when workers share CUDA_VISIBLE_DEVICES [3, >= 2 GPUs]; NCCL collective
timeouts raise in the rank instead of killing the worker, validation on every rank [4, the
timeout part >= 2 GPUs]; bf16 and fp16 (GradScaler) DDP; pinned memory + non_blocking copies;
fp16 refused for the parameter server [6]; a device-side assert retried in a fresh worker [7];
samples/s against the wall clock [8]; compression of a CUDA model [9]; ``precision="auto"``
[10]; ``compile=True``; and TinyGPT tokens/s under ``fit`` vs a plain single-process PyTorch
loop on the same GPU (target >= 0.97x) with model FLOPs utilisation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 570.0  # the whole run, installs included, stays under 10 minutes
T0 = time.monotonic()
# dense bf16/fp16 tensor-core peaks (FLOP/s) for MFU, by a substring of the device name
PEAKS = [
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10", 125e12),
    ("L4", 121e12),
    ("T4", 65e12),
    ("V100", 125e12),
]


# --- installing -------------------------------------------------------------------------------
def _missing() -> list[str]:
    need = {
        "torch": "torch",
        "dask_cuda": "dask-cuda[cu13]==26.10.0",
        "pynvml": "nvidia-ml-py",
        "distributed": "distributed",
    }
    return [pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None]


def _install() -> None:
    """pip-install lepton_nb (editable, with the gpu extra) when anything is missing, then
    restart this script so the new packages import cleanly."""
    missing = _missing()
    if not missing and importlib.util.find_spec("lepton_nb") is not None:  # installed, deps too
        return
    print(f"installing: lepton_nb[gpu] ({', '.join(missing) or 'lepton_nb'} missing)", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[gpu]", "nvidia-ml-py"],
        check=True,
    )
    os.execv(sys.executable, [sys.executable, __file__, "--no-install", *sys.argv[1:]])


# --- reporting --------------------------------------------------------------------------------
RESULTS: list[dict[str, Any]] = []


def check(name: str, items: str, need_gpus: int = 1) -> Callable[[Callable[..., Any]], Any]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(ctx: dict[str, Any]) -> None:
            row: dict[str, Any] = {"check": name, "items": items}
            t = time.monotonic()
            if ctx["n_gpus"] < need_gpus:
                row.update(status="SKIP", note=f"needs {need_gpus} GPUs")
            elif time.monotonic() - T0 > BUDGET_S - 30:
                row.update(status="SKIP", note="out of time")
            else:
                try:
                    row.update(status="PASS", **(fn(ctx) or {}))
                except Exception as e:  # noqa: BLE001 - a failed check is a row, not the end
                    row.update(
                        status="FAIL",
                        error=f"{type(e).__name__}: {str(e)[:300]}",
                        trace=traceback.format_exc(limit=3)[-800:],
                    )
            row["seconds"] = round(time.monotonic() - t, 1)
            RESULTS.append(row)
            figures = {
                k: v
                for k, v in row.items()
                if k not in ("check", "items", "status", "trace", "seconds")
            }
            print(
                f"[{row['status']}] {name} (items {items}, {row['seconds']} s) {figures}",
                flush=True,
            )

        return wrapped

    return deco


def expect(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


# --- rank functions (run on the workers) ------------------------------------------------------
def _torchrun_device(ctx: Any) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    local = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local)
    dist.init_process_group("nccl")
    t = torch.ones(1, device="cuda")
    dist.all_reduce(t)
    dist.destroy_process_group()
    return {
        "local": local,
        "uuid": str(torch.cuda.get_device_properties(local).uuid),
        "sum": t.item(),
        "pid": os.getpid(),
        "async": os.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING"),
        "ifname": os.environ.get("NCCL_SOCKET_IFNAME"),
    }


def _late_peer(ctx: Any) -> dict[str, Any]:
    """Rank 0 works alone past the group's 10 s timeout; rank 1 waits in an all-reduce."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("nccl", timeout=timedelta(seconds=10))
    t = torch.ones(1, device=ctx.device)
    dist.all_reduce(t)  # a first collective to set the communicator up
    error = None
    if ctx.rank == 0:
        time.sleep(25)
    for _ in range(2):  # the abort surfaces at the wait or, at the latest, at the next call
        try:
            dist.all_reduce(t)
            torch.cuda.synchronize()
        except RuntimeError as e:  # the point: an error in the rank, not a dead process
            error = f"{type(e).__name__}: {str(e)[:120]}"
            break
    return {"rank": ctx.rank, "pid": os.getpid(), "error": error}


def _pinned(ctx: Any) -> dict[str, Any]:
    import torch

    from lepton_nb import datasets
    from lepton_nb.train._common import loader, to_device
    from lepton_nb.train.config import FitConfig

    dl = loader(datasets.mnist().train, FitConfig(batch_size=256), 0, 1, ctx.device)
    x, _ = next(iter(dl))
    y = to_device(x, ctx.device)
    torch.cuda.synchronize()
    return {"pin_memory": dl.pin_memory, "pinned": x.is_pinned(), "on": str(y.device)}


def _device_assert_once(folder: str, ctx: Any) -> int:
    import torch

    Path(folder, f"pid-{ctx.attempt}").write_text(str(os.getpid()))
    if ctx.attempt == 0:
        torch.zeros(2, device=ctx.device)[torch.tensor([10], device=ctx.device)].sum().item()
    return int(torch.ones(3, device=ctx.device).sum().item())


# --- checks -----------------------------------------------------------------------------------
@check("environment", "-")
def env_check(ctx: dict[str, Any]) -> dict[str, Any]:
    import torch

    from lepton_nb.cluster import detect_gpus

    gpus = detect_gpus()
    return {
        "gpus": [f"{g.name} cc{g.compute_capability}" for g in gpus],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "nccl": str(torch.cuda.nccl.version()),
    }


@check("LocalCUDACluster: one worker per GPU, GPU in the worker table", "1")
def workers_check(ctx: dict[str, Any]) -> dict[str, Any]:
    rows = ctx["cluster"].workers
    client = ctx["cluster"].client
    registered = client.sync(client.scheduler.identity, n_workers=-1)["workers"]
    expect(len(rows) == ctx["n_gpus"], f"{len(rows)} workers for {ctx['n_gpus']} GPUs")
    expect(all(r["gpu_name"] for r in rows), f"a worker without GPU: {rows}")
    return {
        "workers": [(r["gpu_name"], r["gpu_capability"]) for r in rows],
        "registered_with_gpu": sum(1 for w in registered.values() if w.get("gpu")),
    }


@check("torchrun-style set_device(LOCAL_RANK) + NCCL all-reduce", "2, 4, 11")
def local_rank_check(ctx: dict[str, Any]) -> dict[str, Any]:
    from lepton_nb.train import run

    out = run(_torchrun_device, cluster=ctx["cluster"])
    expect(len({o["uuid"] for o in out}) == len(out), f"ranks share a GPU: {out}")
    expect(all(o["sum"] == len(out) and o["async"] == "2" for o in out), str(out))
    return {
        "local_ranks": [o["local"] for o in out],
        "async_error_handling": out[0]["async"],
        "nccl_socket_ifname": out[0]["ifname"],
    }


@check("shared CUDA_VISIBLE_DEVICES: ranks spread over GPUs", "3", need_gpus=2)
def shared_check(ctx: dict[str, Any]) -> dict[str, Any]:
    import lepton_nb as ln
    from lepton_nb.train import run

    with ln.launch_cluster(
        n_workers=2, threads_per_worker=1, gpu=False, dashboard_address="127.0.0.1:0"
    ) as c:
        c.wait_for_workers(2)
        out = run(_torchrun_device, cluster=c)
    expect(len({o["uuid"] for o in out}) == 2, f"both ranks on one GPU: {out}")
    return {"local_ranks": sorted(o["local"] for o in out)}


@check("NCCL timeout raises in the rank, the worker lives", "4", need_gpus=2)
def timeout_check(ctx: dict[str, Any]) -> dict[str, Any]:
    from lepton_nb.train import run

    client = ctx["cluster"].client
    before = set(client.run(os.getpid).values())
    out = run(_late_peer, cluster=ctx["cluster"], n_workers=2)
    after = set(client.run(os.getpid).values())
    expect(out[1]["error"] is not None, "the waiting rank saw no timeout")
    expect(before == after, "a worker process died")
    return {"waiting_rank_error": out[1]["error"]}


@check("DDP fit bf16 and fp16 (GradScaler), validation on every rank", "4")
def amp_check(ctx: dict[str, Any]) -> dict[str, Any]:
    from lepton_nb import datasets
    from lepton_nb.models import LeNet5
    from lepton_nb.train import fit

    split, out = datasets.mnist(), {}
    for p in ("bf16", "fp16"):
        r = fit(
            LeNet5,
            split.train,
            split.test,
            cluster=ctx["cluster"],
            epochs=2,
            lr=2e-3,
            precision=p,
            progress=False,
        )
        expect(r.metrics["val_accuracy"] >= 0.93, f"{p}: {r.metrics}")
        out[f"{p}_val_accuracy"] = round(r.metrics["val_accuracy"], 4)
        out[f"{p}_samples_per_s"] = round(r.metrics["samples_per_s"])
    return out


@check("pinned memory + non_blocking copies", "-")
def pinned_check(ctx: dict[str, Any]) -> dict[str, Any]:
    from lepton_nb.train import run

    out = run(_pinned, cluster=ctx["cluster"], n_workers=1)[0]
    expect(out["pin_memory"] and out["pinned"] and out["on"].startswith("cuda"), str(out))
    return out


@check("parameter server: fp16 refused, bf16 trains", "6")
def ps_check(ctx: dict[str, Any]) -> dict[str, Any]:
    from lepton_nb import datasets
    from lepton_nb.errors import ConfigError
    from lepton_nb.models import LeNet5
    from lepton_nb.train import fit

    split = datasets.mnist()
    try:
        fit(LeNet5, split.train, cluster=ctx["cluster"], strategy="ps-sync", precision="fp16")
        raise AssertionError("ps-sync accepted fp16")
    except ConfigError:
        pass
    r = fit(
        LeNet5,
        split.train,
        split.test,
        cluster=ctx["cluster"],
        strategy="ps-sync",
        epochs=1,
        precision="bf16",
        progress=False,
    )
    return {"ps_bf16_val_accuracy": round(r.metrics["val_accuracy"], 4)}


@check("device-side assert: retried in a fresh worker process", "7")
def sticky_check(ctx: dict[str, Any]) -> dict[str, Any]:
    import tempfile

    from lepton_nb.train import run

    with tempfile.TemporaryDirectory() as d:
        out = run(
            partial(_device_assert_once, d), cluster=ctx["cluster"], n_workers=1, max_restarts=1
        )
        pids = [Path(d, f"pid-{i}").read_text() for i in (0, 1)]
    expect(out[0] == 3 and pids[0] != pids[1], f"{out} {pids}")
    return {"pids": pids}


@check("samples/s agrees with the wall clock", "8")
def clock_check(ctx: dict[str, Any]) -> dict[str, Any]:
    from lepton_nb import datasets
    from lepton_nb.models import LeNet5
    from lepton_nb.train import fit

    r = fit(
        LeNet5,
        datasets.mnist().train,
        cluster=ctx["cluster"],
        n_workers=1,
        epochs=2,
        log_every=10,
        progress=False,
    )
    s = r.history[r.history["kind"] == "step"].iloc[1:]
    wall = 64 * (s["step"].iloc[-1] - s["step"].iloc[0]) / (s["time"].iloc[-1] - s["time"].iloc[0])
    reported = float(s["samples_per_s"].iloc[1:].mean())
    expect(abs(reported / wall - 1) < 0.25, f"reported {reported:.0f} vs wall {wall:.0f}")
    return {"reported_samples_per_s": round(reported), "wall_samples_per_s": round(wall)}


@check("compression of a CUDA model", "9")
def compress_check(ctx: dict[str, Any]) -> dict[str, Any]:
    from lepton_nb import datasets
    from lepton_nb.compress import quantize, report
    from lepton_nb.models import LeNet5

    split = datasets.mnist()
    model = LeNet5().cuda().eval()
    q = quantize(model, "static-int8", calibration_data=split.train)
    table = report({"fp32-cuda": model, "int8-cpu": q}, split.test, runs=20)
    return {"latency_ms": {k: round(float(v), 3) for k, v in table["latency_ms"].items()}}


@check("precision='auto'", "10")
def auto_check(ctx: dict[str, Any]) -> dict[str, Any]:
    import torch

    from lepton_nb.train import choose_precision

    chosen = choose_precision(ctx["cluster"])
    expect(chosen == ("bf16" if torch.cuda.get_device_capability(0)[0] >= 8 else "fp16"), chosen)
    return {"auto": chosen}


def _gpt_setup(args: argparse.Namespace) -> tuple[Any, Any, int]:
    from torch.utils.data import Subset

    from lepton_nb import datasets

    corpus = datasets.text(block_size=args.block)
    n = args.batch * (args.steps + 10)
    windows: Any = corpus.train
    return corpus, Subset(windows, range(min(n, len(windows)))), corpus.vocab_size


def _gpt(vocab: int, args: argparse.Namespace) -> Any:
    from lepton_nb.models import TinyGPT

    return TinyGPT(vocab, block_size=args.block, n_layer=args.layers, n_head=8, n_embd=args.embd)


def _plain_tokens_per_s(data: Any, vocab: int, args: argparse.Namespace, compile: bool) -> float:
    """The anchor: a plain single-process loop on cuda:0 (same model, data, batch, bf16)."""
    import torch
    from torch.utils.data import DataLoader

    torch.manual_seed(0)
    model: Any = _gpt(vocab, args).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    net = torch.compile(model) if compile else model
    dl = DataLoader(data, batch_size=args.batch, shuffle=True, pin_memory=True, drop_last=True)
    t0, n = 0.0, 0
    for i, (x, y) in enumerate(dl):
        if i == 10:  # after warm-up (and compilation)
            torch.cuda.synchronize()
            t0, n = time.perf_counter(), 0
        x, y = x.cuda(non_blocking=True), y.cuda(non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = net(x)
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += x.numel()
    torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def _fit_tokens_per_s(
    ctx: dict[str, Any], data: Any, vocab: int, args: argparse.Namespace, compile: bool
) -> float:
    from lepton_nb.train import fit

    r = fit(
        partial(_gpt, vocab, args),
        data,
        cluster=ctx["cluster"],
        n_workers=1,
        epochs=1,
        batch_size=args.batch,
        lr=1e-3,
        precision="bf16",
        compile=compile,
        log_every=10,
        progress=False,
    )
    steps = r.history[r.history["kind"] == "step"]
    return float(steps["samples_per_s"].iloc[1:].mean()) * args.block  # after warm-up


def _mfu(tokens_per_s: float, vocab: int, args: argparse.Namespace) -> float | None:
    import torch

    from lepton_nb.models import count_parameters

    name = torch.cuda.get_device_name(0)
    peak = next((p for key, p in PEAKS if key in name), None)
    if peak is None:
        return None
    flops_per_token = (
        6 * count_parameters(_gpt(vocab, args)) + 12 * args.layers * args.embd * args.block
    )
    return tokens_per_s * flops_per_token / peak


@check("TinyGPT tokens/s: fit vs plain PyTorch loop (target >= 0.97x), MFU", "14.3, 8")
def gpt_check(ctx: dict[str, Any]) -> dict[str, Any]:
    args = ctx["args"]
    _, data, vocab = _gpt_setup(args)
    out: dict[str, Any] = {}
    for compile in (False, True):
        plain = _plain_tokens_per_s(data, vocab, args, compile)
        ours = _fit_tokens_per_s(ctx, data, vocab, args, compile)
        tag = "compiled" if compile else "eager"
        mfu, plain_mfu = _mfu(ours, vocab, args), _mfu(plain, vocab, args)
        out[tag] = {
            "plain_tok_s": round(plain),
            "fit_tok_s": round(ours),
            "ratio": round(ours / plain, 3),
            "target_met": ours / plain >= 0.97,
            "fit_mfu": None if mfu is None else round(mfu, 4),
            "plain_mfu": None if plain_mfu is None else round(plain_mfu, 4),
        }
        if time.monotonic() - T0 > BUDGET_S - 120:
            break
    return out


CHECKS = [
    env_check,
    workers_check,
    local_rank_check,
    shared_check,
    timeout_check,
    amp_check,
    pinned_check,
    ps_check,
    sticky_check,
    clock_check,
    compress_check,
    auto_check,
    gpt_check,
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-install", action="store_true", help="do not pip-install anything")
    ap.add_argument("--tests", action="store_true", help="then run pytest tests/gpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_check.json"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--embd", type=int, default=512)
    ap.add_argument("--steps", type=int, default=150)
    args = ap.parse_args()
    if not args.no_install:
        _install()
    sys.path.insert(0, str(ROOT))
    import torch

    import lepton_nb as ln

    if not torch.cuda.is_available():
        sys.exit("no CUDA device visible to torch: nothing to check (is this a CPU-only torch?)")
    n = len(ln.cluster.detect_gpus())
    print(f"{n} GPU(s); load average {os.getloadavg()}; {platform.node()}", flush=True)
    cluster = ln.launch_cluster(
        n_workers=n, threads_per_worker=1, gpu=True, dashboard_address="127.0.0.1:0"
    )
    ctx = {"cluster": cluster, "n_gpus": n, "args": args}
    try:
        cluster.wait_for_workers(n)
        for fn in CHECKS:
            fn(ctx)
    finally:
        cluster.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "results": RESULTS,
                "loadavg": os.getloadavg(),
                "seconds": round(time.monotonic() - T0, 1),
                "command": " ".join(sys.argv),
            },
            indent=1,
        )
    )
    failed = [r["check"] for r in RESULTS if r["status"] == "FAIL"]
    print(
        f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed or skipped in "
        f"{time.monotonic() - T0:.0f} s; results in {args.out}; load {os.getloadavg()}"
    )
    if args.tests and time.monotonic() - T0 < BUDGET_S - 60:
        left = int(BUDGET_S - (time.monotonic() - T0))
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(ROOT / "tests" / "gpu"),
                "-q",
                "-p",
                "no:cacheprovider",
                f"--timeout={left}",
            ],
            cwd=ROOT,
            check=False,
        )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
