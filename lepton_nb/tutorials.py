"""Run every tutorial notebook as a job and write an HTML index of how each one did.

Meant for a teacher checking a classroom machine before a session (``lepton-nb tutorials``):
each notebook in ``notebooks/`` runs through :func:`lepton_nb.jobs.run` (so every run is also a
job record), and ``index.html`` lists status, duration, recorded values, the checks those values
must pass, and links to the executed notebook and its HTML.  The checks are the same thresholds
the integration tests assert, kept here so both read one source.
"""

from __future__ import annotations

import html
import json
import math
import operator
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_nb._registry import Registry
from lepton_nb.errors import ConfigError, JobError, NotFoundError

if TYPE_CHECKING:
    from lepton_nb.jobs.models import JobRecord

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
}  # fmt: skip


@dataclass(frozen=True)
class Check:
    """``record <op> value`` (or ``record <op> other record`` when ``value`` is a str)."""

    record: str
    op: str
    value: float | str | bool

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ConfigError(f"unknown check operator {self.op!r}; use one of {sorted(_OPS)}")

    def describe(self) -> str:
        return f"{self.record} {self.op} {self.value}"

    def passes(self, records: Mapping[str, Any]) -> bool:
        got = records.get(self.record)
        want = records.get(self.value) if isinstance(self.value, str) else self.value
        if got is None or want is None:
            return False
        if isinstance(got, float) and math.isnan(got):
            return False
        return bool(_OPS[self.op](got, want))


@dataclass(frozen=True)
class Tutorial:
    name: str
    filename: str
    title: str
    summary: str
    checks: tuple[Check, ...] = ()
    quick: dict[str, Any] = field(default_factory=dict)  # smaller settings for CI


TUTORIALS: Registry[Tutorial] = Registry("tutorial")

for _t in (
    Tutorial(
        "00",
        "00_first_distributed_training.ipynb",
        "Your first distributed training",
        "The classic 784-128-10 MLP with Adam on MNIST, trained with DDP on a local "
        "cluster, live loss curve, test accuracy.",
        (Check("test_accuracy", ">=", 0.90),),
        {"epochs": 5},
    ),
    Tutorial(
        "01",
        "01_quickstart.ipynb",
        "Quickstart: the whole path",
        "Cluster, LeNet5 with DDP and a live curve, quantize and prune, measured report, "
        "recorded results.",
        (
            Check("workers", ">=", 1),
            Check("lenet_accuracy", ">=", 0.95),
            Check("int8_size_x", ">=", 3.5),
        ),
    ),
    Tutorial(
        "02",
        "02_distributed_training.ipynb",
        "DDP vs parameter servers, failures",
        "ddp, ps-sync and ps-async side by side; a worker killed mid-run and recovered "
        "from a checkpoint; an elastic run growing from 1 to 2 workers; mixed precision.",
        (
            Check("ddp_accuracy", ">=", 0.85),
            Check("ps_sync_accuracy", ">=", 0.85),
            Check("ps_async_accuracy", ">=", 0.85),
            Check("restarts", ">=", 1),
            Check("recovered_accuracy", ">=", 0.85),
            Check("world_changes", ">=", 1),
            Check("elastic_accuracy", ">=", 0.85),
        ),
        {"epochs": 2},
    ),
    Tutorial(
        "03",
        "03_compression.ipynb",
        "Compression you can measure",
        "Quantization, unstructured vs structured pruning, distillation, per-layer "
        "sensitivity and the CompressionExplorer.",
        (
            Check("mlp_int8_size_x", ">=", 3.5),
            Check("mlp_int8_accuracy_delta", ">=", -0.5),
            Check("lenet_static_int8_size_x", ">=", 3.5),
            Check("lenet_static_int8_accuracy_delta", ">=", -1.0),
            Check("structured_params_x", ">=", 1.8),
            Check("structured_accuracy_delta", ">=", -1.0),
            Check("distill_params_x", ">=", 5.0),
            Check("student_distilled_accuracy", ">=", "student_scratch_accuracy"),
            Check("distill_gap_points", "<=", 2.0),
            Check("save_load_identical", "==", True),
            Check("search_met_budget", "==", True),
            Check("search_drop_points", "<=", 1.0),
        ),
    ),
    Tutorial(
        "04",
        "04_reproducible_jobs.ipynb",
        "Reproducible jobs",
        "Run a notebook as a job, inspect its provenance, sweep a grid on the cluster, "
        "compare two runs, rerun.",
        (
            Check("sweep_succeeded", "==", "sweep_jobs"),
            Check("rerun_identical", "==", True),
            Check("best_accuracy", ">=", 0.8),
        ),
        {"hidden_sizes": [16], "epochs": 2},
    ),
    Tutorial(
        "05",
        "05_text_generation.ipynb",
        "A character-level GPT",
        "TinyGPT trained with AdamW and DDP on Python's help pages; samples before and "
        "after training.",
        (Check("val_loss_drop", ">=", 0.30),),
        {"epochs": 1},
    ),
    Tutorial(
        "06",
        "06_keras_mnist.ipynb",
        "The classic Keras example, on the cluster",
        "The 784-128-10 MLP in tf.keras (Adam, sparse categorical cross-entropy, batches "
        "of 32) trained with MultiWorkerMirroredStrategy on 2 workers through "
        "ln.run(framework='tensorflow'), live curve, test accuracy.",
        (Check("test_accuracy", ">=", 0.90), Check("ranks_reporting", "==", 2)),
    ),
):
    TUTORIALS.add(_t.name, _t)


@dataclass
class TutorialResult:
    """One row of the index; plain data so it round-trips through JSON."""

    name: str
    title: str
    summary: str
    status: str
    duration_s: float | None = None
    records: dict[str, Any] = field(default_factory=dict)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    output: str | None = None
    html: str | None = None
    error: str | None = None
    job_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "succeeded" and all(passed for _, passed in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    @classmethod
    def from_job(cls, tutorial: Tutorial, rec: JobRecord) -> TutorialResult:
        checks = [(c.describe(), c.passes(rec.records)) for c in tutorial.checks]
        return cls(
            tutorial.name,
            tutorial.title,
            tutorial.summary,
            rec.status,
            rec.duration_s,
            dict(rec.records),
            checks if rec.status == "succeeded" else [],
            rec.output,
            rec.html,
            rec.error.describe() if rec.error else None,
            rec.id,
            dict(rec.parameters),
        )


def notebooks_dir() -> Path:
    """``notebooks/`` of the source tree this package comes from, else of the current folder."""
    for base in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (base / "notebooks" / TUTORIALS.get("00").filename).is_file():
            return base / "notebooks"
    raise JobError(
        "cannot find the tutorial notebooks (notebooks/00_*.ipynb); run from the "
        "repository root or pass notebooks=PATH"
    )


def select(names: Sequence[str] | None) -> list[Tutorial]:
    """Tutorials by name ('00'..'06'; a file name or stem works too), all when ``names`` is None."""
    if names is None:
        return [TUTORIALS.get(n) for n in TUTORIALS.names()]
    by_file = {Path(TUTORIALS.get(n).filename).stem: n for n in TUTORIALS.names()}
    out = []
    for raw in names:
        key = Path(str(raw)).stem
        key = by_file.get(key, key)
        try:
            out.append(TUTORIALS.get(key))
        except NotFoundError as e:
            raise ConfigError(str(e)) from None
    return out


def parameters_for(
    tutorial: Tutorial, declared: Sequence[str], parameters: Mapping[str, Any] | None, quick: bool
) -> dict[str, Any]:
    """Per-tutorial values (``{"05": {"epochs": 1}}``) win over shared ones (``{"seed": 1}``),
    which apply only to notebooks that declare them; ``quick`` starts from the CI settings."""
    out = dict(tutorial.quick) if quick else {}
    params = dict(parameters or {})
    names = set(TUTORIALS.names())
    for key, value in params.items():
        if key not in names and key in declared:
            out[key] = value
    own = params.get(tutorial.name)
    if own is not None:
        if not isinstance(own, Mapping):
            raise ConfigError(f"parameters[{tutorial.name!r}] must be a dict of name -> value")
        out.update(own)
    return out


def run_tutorials(
    out_dir: str | Path,
    names: Sequence[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    *,
    quick: bool = False,
    notebooks: str | Path | None = None,
    timeout: float | None = 900,
    store: Any = None,
    strict: bool = False,
) -> Path:
    """Run the tutorials (all, or ``names``) as jobs; write ``out_dir/index.html`` (and
    ``index.json``) and return the index path.  Executed notebooks and their HTML land in
    ``out_dir``.  A failing notebook does not stop the others; with ``strict`` a
    :class:`JobError` is raised after the index is written if any tutorial failed a check."""
    from lepton_nb import jobs
    from lepton_nb.jobs._params import notebook_parameters

    todo = select(names)
    folder = Path(notebooks) if notebooks is not None else notebooks_dir()
    out = Path(out_dir).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    results: list[TutorialResult] = []
    started = time.time()
    for tut in todo:
        path = folder / tut.filename
        if not path.is_file():
            results.append(
                TutorialResult(
                    tut.name, tut.title, tut.summary, "missing", error=f"{path} does not exist"
                )
            )
            continue
        params = parameters_for(tut, list(notebook_parameters(path)), parameters, quick)
        rec = jobs.run(path, params, output=out / tut.filename, timeout=timeout, store=store)
        results.append(TutorialResult.from_job(tut, rec))
    index = out / "index.html"
    index.write_text(render_index(results, out, started), encoding="utf-8")
    (out / "index.json").write_text(
        json.dumps([r.to_dict() for r in results], indent=2, default=str), encoding="utf-8"
    )
    failed = [r.name for r in results if not r.ok]
    if strict and failed:
        raise JobError(f"tutorials {', '.join(failed)} failed or missed a check; see {index}")
    return index


def _link(target: str | None, base: Path, label: str) -> str:
    if not target:
        return ""
    p = Path(target)
    try:
        href = p.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:  # outside the index folder: an absolute file link still works
        href = p.resolve().as_uri()
    return f"<a href='{html.escape(href, quote=True)}'>{html.escape(label)}</a>"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    text = json.dumps(v) if not isinstance(v, str) else v
    return text if len(text) <= 80 else text[:77] + "..."


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #ccc;padding:6px;vertical-align:top}
th{background:#f4f4f4;text-align:left}.ok{color:#0a7d2c;font-weight:600}
.bad{color:#b00020;font-weight:600}ul{margin:0;padding-left:1.1em}small{color:#666}
"""


def render_index(
    results: Sequence[TutorialResult], base: Path, started: float | None = None
) -> str:
    """The index page: one row per tutorial; links are relative to ``base`` when inside it."""
    rows = []
    for r in results:
        cls = "ok" if r.ok else "bad"
        status = r.status if r.ok or r.status != "succeeded" else "checks failed"
        dur = f"{r.duration_s:.1f} s" if r.duration_s is not None else "-"
        recs = "".join(
            f"<li><code>{html.escape(k)}</code> = {html.escape(_value(v))}</li>"
            for k, v in r.records.items()
        )
        checks = "".join(
            f"<li class='{'ok' if ok else 'bad'}'>{'&#10003;' if ok else '&#10007;'} "
            f"{html.escape(desc)}</li>"
            for desc, ok in r.checks
        )
        links = " · ".join(
            x for x in (_link(r.output, base, "notebook"), _link(r.html, base, "html")) if x
        )
        err = f"<br><small>{html.escape(r.error)}</small>" if r.error else ""
        params = (
            f"<br><small>parameters: {html.escape(json.dumps(r.parameters))}</small>"
            if r.parameters
            else ""
        )
        rows.append(
            f"<tr><td><b>{html.escape(r.name)} · {html.escape(r.title)}</b><br>"
            f"<small>{html.escape(r.summary)}</small>{params}</td>"
            f"<td class='{cls}'>{html.escape(status)}{err}</td><td>{dur}</td>"
            f"<td><ul>{recs}</ul></td><td><ul>{checks}</ul></td><td>{links}</td></tr>"
        )
    n_ok = sum(r.ok for r in results)
    total = sum(r.duration_s or 0.0 for r in results)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started or time.time()))
    head = (
        f"<h1>lepton_nb tutorials</h1><p class='{'ok' if n_ok == len(results) else 'bad'}'>"
        f"{n_ok} of {len(results)} passed</p><p><small>{html.escape(platform.node())} · "
        f"Python {platform.python_version()} · {html.escape(platform.platform())} · "
        f"started {when} · {total:.0f} s of notebook time</small></p>"
    )
    table = (
        "<table><tr><th>tutorial</th><th>status</th><th>duration</th><th>recorded</th>"
        "<th>checks</th><th>output</th></tr>" + "".join(rows) + "</table>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>lepton_nb tutorials"
        f"</title><style>{_STYLE}</style></head><body>{head}{table}</body></html>\n"
    )


__all__ = ["TUTORIALS", "Check", "Tutorial", "TutorialResult", "render_index", "run_tutorials"]
