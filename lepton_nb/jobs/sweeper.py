"""jobs.sweep: many parameter sets of one notebook, each job a Dask task on the cluster.

The worker task starts the kernel (papermill runs inside the Dask worker), so a sweep runs as
many jobs at once as the cluster has threads. The notebook travels with the task, and the executed
notebook and HTML travel back as text, so workers need no file system shared with the client;
status, heartbeats, progress and cancels go through Dask events (see :mod:`lepton_nb.jobs._link`).
Outputs go to a local directory or an fsspec URL prefix.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lepton_nb._storage import Location, check_writable, is_url
from lepton_nb.errors import ConfigError
from lepton_nb.jobs._link import ClientRelay
from lepton_nb.jobs._oncluster import worker_job
from lepton_nb.jobs.models import ErrorInfo, JobRecord, new_job_id
from lepton_nb.jobs.runner import StoreArg, prepare
from lepton_nb.jobs.store import JobStore, lepton_home, open_store

if TYPE_CHECKING:
    import pandas as pd

Grid = Mapping[str, Any] | Iterable[Mapping[str, Any]]
RELAY_S = 0.25  # how often the client applies heartbeats and forwards cancels


def expand_grid(grid: Grid | None) -> list[dict[str, Any]]:
    """``{"lr": [1e-3, 1e-2], "bs": [32]}`` -> every combination; a list of dicts is kept as is."""
    if grid is None:
        return [{}]
    if isinstance(grid, Mapping):
        names = list(grid)
        axes = [v if isinstance(v, (list, tuple)) else [v] for v in grid.values()]
        if any(len(a) == 0 for a in axes):
            raise ConfigError("a sweep grid axis is empty; give each name at least one value")
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
    points = list(grid)
    if not points or not all(isinstance(p, Mapping) for p in points):
        raise ConfigError(
            "grid must be a dict of name -> list of values, or a non-empty list of parameter dicts"
        )
    return [dict(p) for p in points]


def _client_for(cluster: Any) -> tuple[Any, Any]:
    """(distributed.Client, thing to close afterwards or None)."""
    if cluster is None:
        import lepton_nb

        owned = lepton_nb.launch_cluster(dashboard_address="127.0.0.1:0")
        return owned.client, owned
    if isinstance(cluster, str):
        import lepton_nb

        conn = lepton_nb.connect(cluster)
        return conn.client, conn
    from lepton_nb.cluster._client import client_of

    try:
        return client_of(cluster), None
    except ConfigError:
        raise ConfigError(
            f"cluster={cluster!r} is not a lepton_nb Cluster, a distributed.Client or a "
            "scheduler address; pass ln.launch_cluster(...) or 'tcp://host:port'"
        ) from None


def sweep(
    notebook: str | Path,
    grid: Grid | None = None,
    cluster: Any = None,
    *,
    output_dir: str | Path | None = None,
    storage_options: dict[str, Any] | None = None,
    kernel: str | None = None,
    timeout: float | None = None,
    cwd: str | Path | None = None,
    store: StoreArg = None,
    seed: int | None = None,
    progress: bool = True,
    html: bool = True,
) -> pd.DataFrame:
    """Run ``notebook`` once per parameter set on the Dask cluster; one row per job.

    ``grid`` is a dict of name -> values (every combination) or a list of parameter dicts.
    ``cluster`` is a lepton_nb Cluster, a distributed.Client, a scheduler address, or None (a
    local cluster is launched for the sweep and closed after). A failing job does not stop the
    others; every job is in the store. Jobs share one seed unless ``seed`` is a parameter.
    ``output_dir`` is a local directory or an fsspec URL prefix (``s3://bucket/sweeps/a``, with
    ``storage_options=``), checked before any job starts. ``jobs.cancel(id)`` stops a job of a
    running sweep from any process, on any worker.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    points = expand_grid(grid)
    sweep_id = new_job_id()
    shared_seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little") >> 1
    jobs: list[tuple[JobRecord, Path]] = []
    for params in points:  # validate every point before anything is submitted
        rec, path = prepare(notebook, params, kernel=kernel, timeout=timeout, cwd=cwd, seed=seed)
        if rec.seed_source == "chosen":  # comparable points: one seed for the whole sweep
            rec.seed = shared_seed
        rec.sweep_id = sweep_id
        jobs.append((rec, path))
    path = jobs[0][1]
    if output_dir is None:
        output_dir = lepton_home() / "sweeps" / f"{path.stem}-{sweep_id}"
    elif not is_url(output_dir):
        output_dir = Path(output_dir).expanduser().resolve()
    out_dir = check_writable(output_dir, storage_options, what="output_dir")
    db = open_store(store)
    for rec, _ in jobs:
        db.put(rec)
    nb_bytes = path.read_bytes()
    client, owned = _client_for(cluster)
    relay = None
    try:
        topic = f"lepton-jobs-{sweep_id}"
        relay = ClientRelay(client, topic, db, [rec.id for rec, _ in jobs])
        futures = {
            client.submit(
                worker_job,
                rec.model_dump_json(),
                nb_bytes,
                str(path),
                topic,
                html,
                pure=False,
                key=f"lepton-job-{rec.id}",
            ): rec
            for rec, _ in jobs
        }
        done: dict[str, JobRecord] = {}
        bar = tqdm(total=len(futures), desc=f"sweep {path.name}", disable=not progress)
        waiting = set(futures)
        while waiting:
            finished = {f for f in waiting if f.done()}
            if not finished:
                time.sleep(RELAY_S)
            waiting -= finished
            relay.pump()
            for fut in finished:
                rec = futures[fut]
                relay.done(rec.id)
                done[rec.id] = _collect(fut, rec, out_dir, db)
                bar.update(1)
            bar.set_postfix(failed=sum(r.status != "succeeded" for r in done.values()))
        bar.close()
    finally:
        if relay is not None:
            relay.close()
        if owned is not None:
            owned.close()
    return _frame([done[rec.id] for rec, _ in jobs], pd)


def _collect(fut: Any, rec: JobRecord, out_dir: Location, db: JobStore) -> JobRecord:
    try:
        data, nb_text, html_text = fut.result()
    except Exception as e:  # noqa: BLE001 - a lost worker fails this job, not the sweep
        rec.status = "failed"
        rec.error = ErrorInfo(reason="worker lost", ename=type(e).__name__, evalue=str(e))
        return db.put(rec)
    rec = JobRecord.model_validate(data)
    stem = f"{Path(rec.notebook).stem}-{rec.id}"
    rec.output = rec.html = None
    rec.progress = {}
    if nb_text is not None:
        out = out_dir.join(f"{stem}.ipynb")
        out.write_bytes(nb_text.encode("utf-8"))
        rec.output = str(out)
    if html_text is not None:
        html_out = out_dir.join(f"{stem}.html")
        html_out.write_bytes(html_text.encode("utf-8"))
        rec.html = str(html_out)
    return db.put(rec)


def _frame(records: list[JobRecord], pd: Any) -> pd.DataFrame:
    rows = []
    for r in records:
        row: dict[str, Any] = {"id": r.id, "status": r.status}
        row.update(r.parameters)
        for k, v in r.records.items():
            row[f"record:{k}" if k in r.parameters or k in ("id", "status") else k] = v
        row["duration_s"] = r.duration_s
        row["error"] = r.error.describe() if r.error else None
        row["output"] = r.output
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = [
    "RELAY_S",
    "Grid",
    "expand_grid",
    "sweep",
]
