"""A run killed with SIGKILL mid-training and resumed with --resume ends exactly as an uninterrupted run."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Long enough to be killed mid-training (400 steps, a checkpoint every 25); the stopping target is
# out of reach so neither run stops early.
CONFIG = '[train]\nsteps = 400\neval_every = 25\nstop_fraction = 1e-9\n'


def _command(out, config, *extra):
    return [sys.executable, str(ROOT / "experiments" / "vanishing_gradient.py"), "--preset", "tiny", "--cells",
            "lstm_fb1", "--lengths", "adding=6", "--config", str(config), "--out", str(out), "--no-progress",
            *extra]  # fmt: skip


def _env():
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def _complete_checkpoints(folder: pathlib.Path) -> list[int]:
    return sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit()) if folder.exists() else []


def test_sigkill_mid_training_then_resume_equals_an_uninterrupted_run(tmp_path):
    config = tmp_path / "long.toml"
    config.write_text(CONFIG)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    uninterrupted = subprocess.Popen(_command(whole, config), env=_env(), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)  # fmt: skip
    # The interrupted run also goes through --mesh (one device here): sharded state is checkpointed too.
    proc = subprocess.Popen(_command(killed, config, "--mesh", "1"), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    ckpts = killed / "checkpoints" / "adding_T6_lstm_fb1" / "fit-0"
    deadline = time.monotonic() + 240
    while not _complete_checkpoints(ckpts) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before a checkpoint was seen: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    seen = _complete_checkpoints(ckpts)
    assert seen and seen[-1] < 400, seen
    assert not (killed / "results.json").exists()  # killed inside the only grid point

    resumed = subprocess.run(_command(killed, config, "--resume", "--mesh", "1"), env=_env(), capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()[-3000:]
    assert not ckpts.parent.exists()  # removed once the point's results were written

    a = json.loads((whole / "results.json").read_text())["tasks"]["adding"]["runs"][0]
    b = json.loads((killed / "results.json").read_text())["tasks"]["adding"]["runs"][0]
    assert a["steps_run"] == b["steps_run"] == 400
    for entry in (a, b):
        entry.pop("seconds")
    assert a == b  # test metrics of the final parameters, solved steps, gradient curves: all exact
    name = "runs/adding_T6_lstm_fb1.npz"
    with np.load(whole / name) as x, np.load(killed / name) as y:
        assert sorted(x.files) == sorted(y.files)
        for name in x.files:  # every training curve, and dL/dh of the trained parameters
            np.testing.assert_array_equal(x[name], y[name], err_msg=name)
