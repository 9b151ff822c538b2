"""Run folders: atomic writes, JSON without NaN, the progress line, the readout model."""

import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rnnlab import cells, models, runs
from rnnlab.progress import Progress


def test_atomic_write_replaces_whole_files_and_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    runs.write_json(path, {"a": 1})
    runs.write_json(path, {"a": 2, "b": [1.5, float("nan")], "c": np.arange(3), "d": np.float32(0.25)})
    assert json.loads(path.read_text()) == {"a": 2, "b": [1.5, None], "c": [0, 1, 2], "d": 0.25}

    # A crash between writing the temporary file and renaming it keeps the old file intact.
    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        runs.write_json(path, {"a": 3})
    assert json.loads(path.read_text())["a"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_files_get_the_mode_the_umask_gives_a_new_file(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = runs.write_json(tmp_path / "results.json", {"a": 1})
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_npz_round_trip_without_pickle(tmp_path):
    runs.write_npz(tmp_path / "h.npz", loss=np.ones((3, 2)), step=np.arange(3))
    with np.load(tmp_path / "h.npz", allow_pickle=False) as h:
        np.testing.assert_array_equal(h["loss"], np.ones((3, 2)))
        np.testing.assert_array_equal(h["step"], np.arange(3))


def test_machine_info_names_the_backend():
    info = runs.machine_info()
    assert info["backend"] == jax.default_backend() and info["cores"] >= 1 and "jax" in info["versions"]


def test_progress_prints_about_ten_lines_to_a_log_and_nothing_when_disabled():
    out = io.StringIO()
    bar = Progress(1000, "run", stream=out)
    for done in range(1, 1001):
        bar.update(done, f"loss {1 / done:.3f}")
    bar.close()
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 11 and lines[-1].startswith("run [####################] 1000/1000")
    quiet = io.StringIO()
    bar = Progress(10, "run", stream=quiet, enabled=False)
    bar.update(5)
    bar.close()
    assert quiet.getvalue() == ""


def test_sequence_model_is_the_core_then_a_linear_readout():
    model = models.sequence_model(cells.lstm(6), output_size=3)
    params = model.init(jax.random.key(0), input_size=5)
    xs = jax.random.normal(jax.random.key(1), (2, 4, 5))
    _, hs = model.hidden(params, xs)
    expected = np.asarray(hs) @ np.asarray(params.readout.kernel) + np.asarray(params.readout.bias)
    np.testing.assert_allclose(model.apply(params, xs), expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(params.readout.bias) == 0)
    with pytest.raises(ValueError, match=r"output_size must be"):
        models.sequence_model(cells.lstm(6), output_size=0)
    with pytest.raises(TypeError, match=r"core must be a Cell"):
        models.sequence_model(jnp.ones(3), output_size=1)
