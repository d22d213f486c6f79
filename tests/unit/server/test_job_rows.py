"""How the server presents job records: root-relative paths and one-line errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lepton_nb.server.jobs import JobManager, record_to_dict


@dataclasses.dataclass
class _Rec:
    id: str
    started: float


def test_record_to_dict_accepts_pydantic_dataclass_and_dict() -> None:
    from lepton_nb.jobs.models import JobRecord

    rec = JobRecord(notebook="/x/a.ipynb", notebook_sha256="0" * 64, parameters={"n": 1})
    assert record_to_dict(rec)["parameters"] == {"n": 1}
    assert record_to_dict(_Rec("a", 1.5)) == {"id": "a", "started": 1.5}
    assert record_to_dict({"id": "b", "path": Path("/p")}) == {"id": "b", "path": "/p"}


def test_present_makes_paths_relative_and_errors_one_line(tmp_path: Path) -> None:
    manager = JobManager(tmp_path)
    try:
        row = manager._present(
            {
                "id": "j1",
                "notebook": str(tmp_path / "nb" / "a.ipynb"),
                "output": str(tmp_path / "lepton-outputs" / "a-1.ipynb"),
                "error": {
                    "reason": "error",
                    "cell_index": 2,
                    "ename": "ValueError",
                    "evalue": "bad",
                },
            }
        )
        assert row["notebook"] == "nb/a.ipynb"
        assert row["output_path"] == "lepton-outputs/a-1.ipynb"
        assert row["error"] == "error in cell 2: ValueError: bad"
        assert row["error_info"]["ename"] == "ValueError"
        outside = manager._present(
            {"id": "j2", "notebook": "/elsewhere/b.ipynb", "output": "/elsewhere/b-out.ipynb"}
        )
        assert outside["notebook"] == "/elsewhere/b.ipynb" and outside["output_path"] is None
    finally:
        manager.shutdown()
