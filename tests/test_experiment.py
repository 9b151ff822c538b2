"""run_grid: every point once, partial results on disk after each, --resume redoes only what is missing."""

import json

import pytest

from rnnlab import experiment


def _grid(out, calls, *, resume=False, config=None, fail_at=None):
    def run_one(point, k, n):
        if point == fail_at:
            raise KeyboardInterrupt  # an interruption in the middle of the grid
        calls.append(point)
        return {"x": point, "y": 10 * point}, {"curve": [point, point]}

    return experiment.run_grid(
        config or {"name": "t", "steps": 3}, out, experiment="t", grid=[1, 2, 3], name_of=lambda p: f"p{p}",
        entry_name=lambda e: f"p{e['x']}", run_one=run_one, findings=lambda r: {"n": len(r["runs"])},
        make_plots=lambda r, o: [], report=lambda r: f"{r['findings']['n']} runs", resume=resume,
    )  # fmt: skip


def test_an_interrupted_grid_resumes_where_it_stopped(tmp_path):
    calls = []
    with pytest.raises(KeyboardInterrupt):
        _grid(tmp_path, calls, fail_at=3)
    partial = json.loads((tmp_path / "results.json").read_text())
    assert [e["x"] for e in partial["runs"]] == [1, 2] and "findings" not in partial
    assert not (tmp_path / "report.md").exists()
    calls.clear()
    results = _grid(tmp_path, calls, resume=True)
    assert calls == [3]
    assert [e["y"] for e in results["runs"]] == [10, 20, 30]
    assert (tmp_path / "report.md").read_text() == "3 runs"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["p1.npz", "p2.npz", "p3.npz"]
    # Without --resume everything runs again.
    calls.clear()
    _grid(tmp_path, calls)
    assert calls == [1, 2, 3]


def test_resume_refuses_a_folder_of_another_config(tmp_path):
    _grid(tmp_path, [])
    with pytest.raises(ValueError, match=r"different config \(differs in \['steps'\]\)"):
        _grid(tmp_path, [], resume=True, config={"name": "t", "steps": 4})
