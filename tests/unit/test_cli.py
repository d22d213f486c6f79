"""lepton-nb CLI: value parsing, usage errors, and store commands that need no kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lepton_nb.cli import build_parser, main, parse_value
from lepton_nb.jobs.models import JobRecord
from lepton_nb.jobs.store import JobStore


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3", 3),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e-3", 1e-3),
        ("True", True),
        ("false", False),
        ("None", None),
        ("abc", "abc"),
        ('say "hi"', 'say "hi"'),
        ("it's", "it's"),
        ("line1\nline2", "line1\nline2"),
        ("ünïcødé ✓", "ünïcødé ✓"),
        ("a: b", "a: b"),
        ("[1, 2]", "[1, 2]"),
        ("nan", "nan"),
        ("yes", "yes"),
        (" 3.5", " 3.5"),
    ],
)
def test_parse_value_like_papermill(text: str, value: object) -> None:
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["sweep", "nb.ipynb", "--workers", "2", "--scheduler", "tcp://x:1"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["run", "nb.ipynb", "-p", "only-name"])
    assert e.value.code == 2


def test_lepton_errors_exit_1_without_traceback(
    tmp_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "does-not-exist.ipynb"]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "Traceback" not in err
    assert main(["jobs", "show", "nope"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["jobs", "list", "--status", "weird"]) == 1
    assert "unknown status" in capsys.readouterr().err


def test_bad_parameters_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("- 1\n- 2\n")
    nb = tmp_path / "nb.ipynb"
    nb.write_text("{}")
    assert main(["run", str(nb), "-f", str(bad)]) == 1
    assert "YAML mapping" in capsys.readouterr().err


def test_jobs_list_show_compare_from_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = JobStore(tmp_path / "s.sqlite")
    a = store.put(
        JobRecord(
            notebook="/n.ipynb",
            notebook_sha256="0",
            parameters={"lr": 0.1},
            records={"acc": 0.5},
            status="succeeded",
            created=1.0,
        )
    )
    b = store.put(
        JobRecord(
            notebook="/n.ipynb",
            notebook_sha256="0",
            parameters={"lr": 0.2},
            records={"acc": 0.5},
            status="succeeded",
            created=2.0,
        )
    )
    s = ["--store", str(store.path)]
    assert main([*s, "jobs", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(b.id) and lines[1].startswith(a.id)
    assert main([*s, "jobs", "show", a.id]) == 0
    assert '"lr": 0.1' in capsys.readouterr().out
    assert main([*s, "jobs", "compare", a.id, b.id]) == 0
    out = capsys.readouterr().out
    assert "lr" in out and "acc" not in out  # equal rows hidden without --all
    assert main([*s, "jobs", "compare", "--all", a.id, b.id]) == 0
    assert "acc" in capsys.readouterr().out
    assert main([*s, "jobs", "cancel", a.id]) == 1
    assert "already finished" in capsys.readouterr().err


def test_parser_knows_every_command() -> None:
    p = build_parser()
    for argv in (["run", "nb"], ["sweep", "nb"], ["jobs", "list"], ["demo"]):
        assert p.parse_args(argv).command == argv[0]


def test_tutorials_command_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    from lepton_nb.cli import main

    assert main(["tutorials", "99", "-o", "unused"]) == 1
    err = capsys.readouterr().err
    assert "lepton-nb: error:" in err and "99" in err


def test_schedule_commands(
    tmp_path: Path, make_nb: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    nb = str(make_nb("a.ipynb", params="n = 1"))
    store = str(tmp_path / "s.sqlite")
    assert main(["--store", store, "schedule", "add", nb, "0 3 * * *", "-p", "n", "4"]) == 0
    out = capsys.readouterr().out
    sid = out.split()[1]
    assert "next firing" in out
    assert main(["--store", store, "schedule", "list"]) == 0
    assert sid in capsys.readouterr().out
    assert main(["--store", store, "schedule", "pause", sid]) == 0
    assert "paused" in capsys.readouterr().out
    assert main(["--store", store, "schedule", "resume", sid]) == 0
    assert "next" in capsys.readouterr().out
    assert main(["--store", store, "schedule", "run", sid]) == 0
    assert "queued" in capsys.readouterr().out
    assert [r.status for r in JobStore(store).list()] == ["queued"]
    assert main(["--store", store, "schedule", "remove", sid]) == 0
    for argv, needle in (
        (["schedule", "add", nb, "61 * * * *"], "invalid cron"),
        (["schedule", "add", nb, "* * * * *", "--timezone", "Nowhere/X"], "unknown time zone"),
        (["schedule", "add", nb, "* * * * *", "-p", "nope", "1"], "nope"),
        (["schedule", "add", nb, "* * * * *", "--profile", "zzz"], "unknown cluster profile"),
        (["schedule", "add", str(tmp_path / "missing.ipynb"), "@daily"], "does not exist"),
        (["schedule", "pause", sid], "does not exist"),
        (["scheduler", "--max-parallel", "0"], "max_parallel_jobs must be"),
    ):
        assert main(["--store", store, *argv]) == 1
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err, (argv, err)
