"""What a live LossCurve costs a training run.

Runs ``ln.fit`` in a real ipykernel (the way a notebook does) on a 2-worker cluster, with and
without a displayed LossCurve whose comm is live: this script plays the frontend, telling the
kernel a view exists and draining every widget message.  Runs alternate (without, with, ...)
so drift hits both sides; the ratio of median wall times is printed (target <= 1.02), with the
redraws/s during training and the redraw rate a 100k-step, 4-rank history sustains.

Reproduce:  python benchmarks/curve_overhead.py [--epochs 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

SETUP = """
import json, time
import lepton_nb as ln
from IPython.display import display
from lepton_nb.datasets import mnist
from lepton_nb.models import MLP

cluster = ln.launch_cluster(n_workers=2, threads_per_worker=1, gpu=False,
                            dashboard_address="127.0.0.1:0")
cluster.wait_for_workers(2)
train, test = mnist()

def run(callbacks):
    # process_time covers every thread of the kernel: the fit driver, the Dask client's
    # event loop and the curve's redraw timer
    t0, c0 = time.perf_counter(), time.process_time()
    ln.fit(MLP(), train, val_data=test, cluster=cluster, epochs={epochs}, batch_size=32,
           strategy="ddp", seed=0, callbacks=callbacks, progress=False)
    return time.perf_counter() - t0, time.process_time() - c0
"""
MAKE_CURVE = "curve = ln.LossCurve()\ndisplay(curve)\nprint(curve._view.fig.model_id)"
RUN_WITH = (
    "t, c = run([curve])\nprint(json.dumps({'wall': t, 'cpu': c, 'redraws': "
    "curve.redraw_count, 'attached': curve.frontend_attached}))"
)
RUN_WITHOUT = "t, c = run([])\nprint(json.dumps({'wall': t, 'cpu': c}))"


def execute(kc: Any, code: str) -> tuple[str, int]:
    """Run a cell; return its stdout and how many widget messages the kernel sent us."""
    msg_id = kc.execute(code)
    out, comm_msgs = [], 0
    while True:
        msg = kc.get_iopub_msg(timeout=900)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        if kind == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])
        comm_msgs += kind == "comm_msg"
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out), comm_msgs


def last_json(text: str) -> dict[str, Any]:
    return dict(json.loads(text.strip().splitlines()[-1]))


def kernel_runs(epochs: int, repeats: int) -> dict[str, Any]:
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        execute(kc, SETUP.format(epochs=epochs))
        execute(kc, RUN_WITHOUT)  # warm-up: imports, worker-side caches
        without, with_, redraw_rates, comm_counts, cpu_without, cpu_with = [], [], [], [], [], []
        for _ in range(repeats):
            base = last_json(execute(kc, RUN_WITHOUT)[0])
            without.append(base["wall"])
            cpu_without.append(base["cpu"])
            fig_id = execute(kc, MAKE_CURVE)[0].strip()
            view = kc.session.msg(
                "comm_msg",
                {
                    "comm_id": fig_id,
                    "data": {"method": "update", "state": {"_view_count": 1}, "buffer_paths": []},
                },
            )
            kc.shell_channel.send(view)  # what JupyterLab sends when it renders the figure
            text, comms = execute(kc, RUN_WITH)
            stats = last_json(text)
            assert stats["attached"], "the simulated frontend view did not register"
            with_.append(stats["wall"])
            cpu_with.append(stats["cpu"])
            redraw_rates.append(stats["redraws"] / stats["wall"])
            comm_counts.append(comms)
        execute(kc, "cluster.close()")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return {
        "without": without,
        "with": with_,
        "redraws_per_s": redraw_rates,
        "comm_msgs": comm_counts,
        "cpu_without": cpu_without,
        "cpu_with": cpu_with,
    }


def redraw_capacity(steps: int = 100_000, ranks: int = 4, seconds: float = 3.0) -> float:
    """Redraws per second with a long history (each redraw after new events for every rank)."""
    from lepton_nb.widgets import LossCurve

    curve = LossCurve(redraw_interval=0)
    curve.on_events(
        [
            {
                "kind": "step",
                "rank": r,
                "step": s,
                "loss": 1.0 / (s + 1),
                "lr": 1e-3,
                "samples_per_s": 100.0,
            }
            for s in range(steps)
            for r in range(ranks)
        ]
    )
    n, s, t0 = 0, steps, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        curve.on_events(
            [
                {
                    "kind": "step",
                    "rank": r,
                    "step": s,
                    "loss": 0.5,
                    "lr": 1e-3,
                    "samples_per_s": 100.0,
                }
                for r in range(ranks)
            ]
        )
        s, n = s + 1, n + 1
    rate = n / (time.perf_counter() - t0)
    curve.finalize()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    res = kernel_runs(args.epochs, args.repeats)
    base, curve = statistics.median(res["without"]), statistics.median(res["with"])
    print(f"fit without LossCurve: {[round(t, 2) for t in res['without']]} s, median {base:.2f}")
    print(f"fit with LossCurve:    {[round(t, 2) for t in res['with']]} s, median {curve:.2f}")
    pairs = [w / wo for w, wo in zip(res["with"], res["without"], strict=True)]
    print(f"overhead ratio (median with / median without): {curve / base:.3f}  (target <= 1.02)")
    print(
        f"paired ratios (run i with / run i without): {[round(r, 3) for r in pairs]}, "
        f"median {statistics.median(pairs):.3f}"
    )
    added = statistics.median(res["cpu_with"]) - statistics.median(res["cpu_without"])
    print(
        f"kernel CPU per run: without {statistics.median(res['cpu_without']):.2f} s, with "
        f"{statistics.median(res['cpu_with']):.2f} s -> the curve adds {added:.3f} s = "
        f"{100 * added / base:.2f}% of the run's wall time (ratio bound {1 + added / base:.3f})"
    )
    print(
        f"redraws/s during fit: {statistics.median(res['redraws_per_s']):.2f}  "
        f"(widget messages per run: {res['comm_msgs']})"
    )
    print(f"redraw capacity, 100k steps x 4 ranks history: {redraw_capacity():.1f} redraws/s")
    print(
        f"reproduce: python benchmarks/curve_overhead.py --epochs {args.epochs} "
        f"--repeats {args.repeats}"
    )


if __name__ == "__main__":
    main()
