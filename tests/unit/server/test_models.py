"""The request models reject what the handlers must not see and round-trip to dicts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lepton_nb.server._models import ClusterPatch, JobFilter, JobSubmit, LaunchRequest


def test_launch_request_maps_gpu_modes_and_round_trips() -> None:
    req = LaunchRequest(n_workers=2, threads_per_worker=1, gpu="off")
    assert req.gpu_arg() is False
    assert LaunchRequest(gpu="on").gpu_arg() is True
    assert LaunchRequest().gpu_arg() == "auto"
    assert LaunchRequest.model_validate(req.model_dump()) == req


@pytest.mark.parametrize(
    "raw",
    [{"n_workers": 0}, {"threads_per_worker": -1}, {"gpu": "yes"}, {"workers": 2}, {"profile": ""}],
)
def test_launch_request_rejects(raw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LaunchRequest.model_validate(raw)


def test_patch_needs_exactly_one_action() -> None:
    assert ClusterPatch(n_workers=3).adapt is None
    assert ClusterPatch.model_validate({"adapt": {"minimum": 1, "maximum": 2}}).n_workers is None
    for raw in ({}, {"n_workers": 1, "adapt": {}}):
        with pytest.raises(ValidationError, match="exactly one"):
            ClusterPatch.model_validate(raw)
    with pytest.raises(ValidationError, match="minimum <= maximum"):
        ClusterPatch.model_validate({"adapt": {"minimum": 3, "maximum": 1}})


def test_job_models() -> None:
    sub = JobSubmit(notebook="a.ipynb", parameters={"epochs": 1, "lr": 0.1})
    assert JobSubmit.model_validate(sub.model_dump()) == sub
    with pytest.raises(ValidationError):
        JobSubmit.model_validate({"notebook": ""})
    with pytest.raises(ValidationError):
        JobSubmit.model_validate({"notebook": "a.ipynb", "params": {}})
    assert JobFilter.model_validate({"limit": "5"}).limit == 5
    with pytest.raises(ValidationError):
        JobFilter.model_validate({"limit": "0"})
