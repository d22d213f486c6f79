"""Schedules from the sidebar in a real JupyterLab: a cron firing every minute runs a job.

Named to run after test_sidebar.py (the session's lab is shared, jobs cannot be deleted, and
test_sidebar.py expects an empty jobs list).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_schedule_from_the_sidebar_fires_a_job_and_notifies(page: Any, ui: Any, lab: Any) -> None:
    ui.open_notebook("short.ipynb")  # the schedule takes the open notebook and its parameters
    ui.open_sidebar()
    page.fill(".lepton-ScheduleForm .lepton-cron", "* * * * *")
    page.fill(".lepton-ScheduleForm .lepton-timezone", "UTC")
    page.click(".lepton-ScheduleForm .lepton-schedule-create")
    try:
        row = page.wait_for_selector(".lepton-Schedule", timeout=30_000)
        assert "* * * * *" in row.inner_text() and "next in" in row.inner_text()
        (schedule,) = lab.api("lepton/api/schedules")
        assert schedule["notebook"] == "short.ipynb"
        assert schedule["parameters"] == {"n": 3, "label": "demo", "delay": 0}
        ui.shot("sidebar-schedule-created")
        # The next minute fires: a job linked to the schedule appears, then succeeds...
        toast = page.wait_for_selector(".jp-toast-button:has-text('Open output')", timeout=150_000)
        jobs = [j for j in lab.api("lepton/api/jobs") if j["schedule_id"] == schedule["id"]]
        assert jobs and jobs[0]["status"] == "succeeded", json.dumps(jobs)[:2000]
        assert jobs[0]["records"] == {"answer": 9}
        job_row = page.locator(f".lepton-Job[data-job-id='{jobs[0]['id']}'] .lepton-Job-status")
        assert job_row.inner_text() == "succeeded"
        ui.shot("schedule-fired-notification")
        # ...and the notification's "Open output" opens the executed notebook.
        toast.click()
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-OutputArea-output')]"
            ".some(o => o.textContent.includes('answer=9 label=demo'))",
            timeout=60_000,
        )
        ui.open_sidebar()
        page.wait_for_function(
            "() => document.querySelector('.lepton-Schedule-last')?.textContent"
            " === 'last job succeeded'",
            timeout=30_000,
        )
        page.click(".lepton-Schedule .lepton-schedule-remove")
        page.wait_for_selector(".lepton-Schedule", state="detached", timeout=30_000)
    finally:
        # never leave a schedule firing every minute into the other tests' job lists
        for left in lab.api("lepton/api/schedules"):
            lab.api(f"lepton/api/schedules/{left['id']}", "DELETE")
    assert lab.api("lepton/api/schedules") == []
