"""The compression table: every method on MLP, LeNet5 and a Linear-heavy MLP, measured.

Each model family is trained once with ``lepton_nb.train.fit`` on the shipped MNIST subset; the
fp32 model is the anchor (first row, ratio 1.0) and every compressed variant is measured next to
it in the same run: parameters, serialized bytes, median latency (1 thread, batch 64, after
warm-up) and held-out accuracy.  A raw ``torch.ao.quantization.quantize_dynamic`` row checks that
lepton_nb's dynamic-int8 adds nothing on top of PyTorch's own API.

Reproduce:  python benchmarks/compression_table.py [--epochs 3] [--runs 100]
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import pandas as pd
import torch
from torch import nn
from torch.utils.data import TensorDataset

from lepton_nb import compress
from lepton_nb.datasets import mnist
from lepton_nb.models import MLP, LeNet5
from lepton_nb.train import fit

FIT: dict[str, Any] = {"batch_size": 32, "lr": 3e-3, "progress": False,
                       "checkpoint_every": 10**9, "log_every": 50}  # fmt: skip


def wide_mlp() -> nn.Module:
    """Linear-heavy: 784-1024-1024-10 (1.9M parameters), where int8 GEMMs pay off."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024),
                         nn.ReLU(), nn.Linear(1024, 10))  # fmt: skip


def tiny_cnn() -> nn.Module:
    """A LeNet-style student with 8x fewer parameters than LeNet5."""
    return nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 10))  # fmt: skip


def variants(name: str, model: nn.Module, epochs: int) -> dict[str, nn.Module]:
    split = mnist()
    x = split.train.tensors[0]
    out: dict[str, nn.Module] = {"fp32": model}
    out["dynamic-int8"] = compress.quantize(model, "dynamic-int8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["anchor: torch quantize_dynamic"] = torch.ao.quantization.quantize_dynamic(
            model, {nn.Linear}, dtype=torch.qint8
        )
    out["static-int8"] = compress.quantize(model, "static-int8", calibration_data=x[:1000])
    out["weight-only-int8"] = compress.quantize(model, "weight-only-int8")
    out["prune-l1 50%"] = compress.prune(model, 0.5, scope="global")
    out["prune-structured 50% +ft"] = compress.prune(
        model, 0.5, structured=True, example_input=x[:1], train_data=split.train,
        fine_tune_epochs=1, **{**FIT, "lr": 1e-3},
    )  # fmt: skip
    out["structured 50% + static-int8"] = compress.quantize(
        out["prune-structured 50% +ft"], "static-int8", calibration_data=x[:1000]
    )
    if name == "LeNet5":
        # the student sees 2,000 labelled images, the teacher saw all 4,000
        xs, ys = split.train.tensors
        labelled = TensorDataset(xs[:2000], ys[:2000])
        torch.manual_seed(0)
        student = tiny_cnn()
        out["distill -> tiny CNN (2k labels)"] = compress.distill(
            model, student, labelled, epochs=epochs, seed=0, **FIT
        )
        out["tiny CNN alone (2k labels)"] = fit(student, labelled, epochs=epochs, seed=0,
                                                **FIT).model  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    split = mnist()
    tables = []
    for name, factory in (("MLP", MLP), ("LeNet5", LeNet5), ("wide MLP", wide_mlp)):
        t0 = time.perf_counter()
        torch.manual_seed(0)
        model = fit(factory(), split.train, epochs=args.epochs, seed=0, **FIT).model
        table = compress.report(variants(name, model, args.epochs), split.test, runs=args.runs,
                                warmup=20)  # fmt: skip
        table.insert(0, "family", name)
        tables.append(table)
        print(f"{name}: trained and measured in {time.perf_counter() - t0:.0f} s", flush=True)
    full = pd.concat(tables)
    cols = ["family", "params", "bytes", "latency_ms", "accuracy", "size_x", "speedup",
            "accuracy_delta"]  # fmt: skip
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(full[cols].round({"latency_ms": 3, "accuracy": 3, "size_x": 2, "speedup": 2,
                                "accuracy_delta": 1}).to_string())  # fmt: skip
    print(
        f"\nsettings: {full.attrs.get('settings') or tables[0].attrs['settings']}, "
        f"torch {torch.__version__}, threads fixed at 1"
    )
    print(
        f"reproduce: python benchmarks/compression_table.py --epochs {args.epochs} "
        f"--runs {args.runs}"
    )


if __name__ == "__main__":
    main()
