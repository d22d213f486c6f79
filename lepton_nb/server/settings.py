"""The server extension's settings, configurable the Jupyter way (traitlets).

Set them in ``jupyter_server_config.py`` (``c.LeptonSettings.max_parallel_jobs = 4``), or on the
command line (``jupyter lab --LeptonSettings.max_parallel_jobs=4``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from lepton_nb.errors import ConfigError


class LeptonSettings(Configurable):
    """Settings of the ``lepton/api`` server extension."""

    max_parallel_jobs = Int(2, help="Jobs the runner process runs at once (>= 1).").tag(config=True)
    output_dir = Unicode(
        "lepton-outputs",
        help="Folder for executed notebooks of jobs submitted here, relative to the server root.",
    ).tag(config=True)
    default_profile = Unicode(
        "", help="Cluster profile used when a launch or schedule names none ('' = none)."
    ).tag(config=True)
    store_path = Unicode("", help="Job store (SQLite) path; '' = $LEPTON_HOME/jobs.sqlite.").tag(
        config=True
    )
    pool_threads = Int(4, help="Threads running the API's blocking work off the event loop.").tag(
        config=True
    )
    scheduler_tick = Float(5.0, help="Seconds between two looks for due schedules.").tag(
        config=True
    )
    runner_idle_exit = Float(
        30.0, help="Seconds the detached job runner waits idle before it exits."
    ).tag(config=True)

    stop_clusters_on_exit = Bool(
        False,
        help="Stop the clusters launched from the sidebar when the server exits (by default "
        "they run on in their own processes and the next server lists them re-attached).",
    ).tag(config=True)

    @validate("max_parallel_jobs", "pool_threads")
    def _at_least_one(self, proposal: dict[str, Any]) -> int:
        value = int(proposal["value"])
        if value < 1:
            raise TraitError(f"{proposal['trait'].name} must be >= 1, got {value}")
        return value

    @validate("scheduler_tick", "runner_idle_exit")
    def _positive(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if value <= 0:
            raise TraitError(f"{proposal['trait'].name} must be > 0, got {value}")
        return value

    def resolved_output_dir(self, root: Path) -> Path:
        from lepton_nb.server._paths import confine

        return confine(root, self.output_dir or ".", must_exist=False)

    def store(self) -> str | None:
        return self.store_path or None


def load_settings(config: Any) -> LeptonSettings:
    """Settings from the server's config; a bad value is a ConfigError naming the setting."""
    try:
        return LeptonSettings(config=config)  # the traits are read from c.LeptonSettings
    except TraitError as e:
        raise ConfigError(f"invalid LeptonSettings: {e}; fix it in jupyter_server_config") from e


__all__ = ["LeptonSettings", "load_settings"]
