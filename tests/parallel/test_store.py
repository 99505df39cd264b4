from __future__ import annotations

from pathlib import Path

import pytest

from linegraph2road.errors import ParameterError
from linegraph2road.parallel import Executor, ParallelOptions, TaskStore


def _finish(store: TaskStore, task: str, out: Path) -> None:
    (out / f"{task}.txt").write_text(task)
    store.ref.commit(task, {"files": [f"{task}.txt"]})


def test_records_resume_and_a_changed_run_starts_fresh(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / ".run", {"options": {"t": 1}})
    _finish(store, "a", tmp_path)
    assert store.done("a") is not None and store.done("b") is None
    again = TaskStore(tmp_path / ".run", {"options": {"t": 1}})
    assert not again.stale and again.done("a") is not None
    (tmp_path / "a.txt").unlink()  # an output gone: the task is not done any more
    assert again.done("a") is None
    _finish(again, "a", tmp_path)  # recomputed: the existing record is valid again
    assert again.ref.commit("a", {"files": ["a.txt"]})["task"] == "a"
    assert again.completions() == ["a"]  # a task is never recorded twice
    other = TaskStore(tmp_path / ".run", {"options": {"t": 2}})
    assert other.stale and other.done("a") is None and other.completions() == []


def test_in_process_executor_reports_failures_per_task(tmp_path: Path) -> None:
    ok = tmp_path / "ok.txt"
    ok.write_text("12345")
    outcomes = list(
        Executor(ParallelOptions()).run(Path.stat, [("ok", ok), ("missing", tmp_path / "nope.txt")])
    )
    assert outcomes[0].ok and outcomes[0].value.st_size == 5
    assert not outcomes[1].ok and "FileNotFoundError" in (outcomes[1].error or "")


@pytest.mark.parametrize("bad", [{"workers": 0}, {"threads": 0}, {"scheduler": " "}])
def test_options_are_checked(bad: dict[str, object]) -> None:
    with pytest.raises(ParameterError):
        ParallelOptions(**bad)  # type: ignore[arg-type]


def test_scheduler_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("L2R_DASK_SCHEDULER", "tcp://127.0.0.1:1")
    opts = ParallelOptions()
    assert opts.address == "tcp://127.0.0.1:1" and opts.distributed
    assert "tcp://127.0.0.1:1" in opts.describe()
