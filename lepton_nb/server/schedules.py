"""ScheduleManager: the schedules REST view over :mod:`lepton_nb.jobs._schedules`.

Notebooks are confined to the server root; the server's scheduler thread fires them (see
:mod:`lepton_nb.jobs._scheduler` for the one-scheduler-per-store lock and catch-up rule).
"""

from __future__ import annotations

from pathlib import Path

from lepton_nb.errors import ConfigError, LeptonError
from lepton_nb.jobs._params import check_parameters, notebook_parameters
from lepton_nb.jobs._scheduler import Scheduler, run_now
from lepton_nb.jobs._schedules import Schedule, ScheduleStore, check_profile
from lepton_nb.server._models import JobInfo, ScheduleCreate, ScheduleInfo, SchedulePatch
from lepton_nb.server._paths import confine, relative
from lepton_nb.server.jobs import JobManager


class ScheduleManager:
    def __init__(self, jobs: JobManager) -> None:
        self.jobs = jobs
        self.store = ScheduleStore(jobs.store)
        self.scheduler = Scheduler(
            self.store,
            tick=jobs.settings.scheduler_tick,
            output_dir=jobs.output_dir,
            on_fire=lambda _fired: jobs.kick(),
        )

    def start(self) -> None:
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.stop()

    def list(self) -> list[ScheduleInfo]:
        return [self.info(s) for s in self.store.list()]

    def get(self, schedule_id: str) -> ScheduleInfo:
        return self.info(self.store.get(schedule_id))

    def create(self, request: ScheduleCreate) -> ScheduleInfo:
        notebook = confine(self.root, request.notebook)
        profile = request.profile or self.jobs.settings.default_profile or None
        check_profile(profile)
        self._check_parameters(notebook, request.parameters)
        schedule = Schedule(
            name=request.name or notebook.stem,
            notebook=str(notebook),
            parameters=request.parameters,
            cron=request.cron,
            timezone=request.timezone,
            profile=profile,
        )
        added = self.store.add(schedule)
        self.scheduler.wake()  # its first slot may come before the next tick
        return self.info(added)

    def patch(self, schedule_id: str, patch: SchedulePatch) -> ScheduleInfo:
        changes = patch.model_dump(exclude_unset=True)
        if "profile" in changes:
            check_profile(changes["profile"])
        if "parameters" in changes:
            current = self.store.get(schedule_id)
            self._check_parameters(Path(current.notebook), changes["parameters"] or {})
        updated = self.store.update(schedule_id, changes)
        self.scheduler.wake()
        return self.info(updated)

    def remove(self, schedule_id: str) -> ScheduleInfo:
        return self.info(self.store.remove(schedule_id))

    def run(self, schedule_id: str) -> JobInfo:
        job = run_now(self.store, schedule_id, self.jobs.output_dir)
        self.jobs.kick()
        return self.jobs.info(job)

    @property
    def root(self) -> Path:
        return self.jobs.root

    @staticmethod
    def _check_parameters(notebook: Path, parameters: dict[str, object]) -> None:
        try:
            check_parameters(parameters, notebook_parameters(notebook), notebook)
        except LeptonError as e:
            raise ConfigError(str(e)) from None

    def info(self, s: Schedule) -> ScheduleInfo:
        last_status = None
        if s.last_job:
            try:
                last_status = self.jobs.store.get(s.last_job).status
            except KeyError:  # the job record was removed from the store
                last_status = None
        data = s.model_dump()
        data["notebook"] = relative(self.root, s.notebook) or s.notebook
        data.pop("output_dir", None)
        return ScheduleInfo(**data, last_status=last_status)


__all__ = ["ScheduleManager"]
