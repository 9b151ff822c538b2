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
# Two grid points (a tanh RNN, then an LSTM), each long enough to be killed mid-training (400 steps,
# checkpointed at every evaluation, every 25 steps); the stopping target is out of reach.
CONFIG = "[train]\nsteps = 400\neval_every = 25\nstop_fraction = 1e-9\n"
POINTS = ("adding_T6_tanh", "adding_T6_lstm_fb1")


def _command(out, config, *extra):
    return [sys.executable, str(ROOT / "experiments" / "vanishing_gradient.py"), "--preset", "tiny", "--cells",
            "tanh,lstm_fb1", "--lengths", "adding=6", "--config", str(config), "--out", str(out), "--no-progress",
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
    interrupted = [*_command(killed, config), "--checkpoint-seconds", "0", "--mesh", "1"]
    proc = subprocess.Popen(interrupted, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ckpts = killed / "checkpoints" / POINTS[1] / "fit-0"
    deadline = time.monotonic() + 240
    while not _complete_checkpoints(ckpts) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before a checkpoint was seen: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    seen = _complete_checkpoints(ckpts)
    assert seen and seen[-1] < 400, seen
    # Killed inside the second point: the first is in results.json, its checkpoints already removed.
    before = json.loads((killed / "results.json").read_text())["tasks"]["adding"]["runs"]
    assert [e["cell"] for e in before] == ["tanh"] and not (killed / "checkpoints" / POINTS[0]).exists()

    resumed = subprocess.run([*interrupted, "--resume"], env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert uninterrupted.wait(timeout=300) == 0, uninterrupted.stderr.read()[-3000:]
    assert not (killed / "checkpoints" / POINTS[1]).exists()  # removed once the point's results were written

    a = json.loads((whole / "results.json").read_text())["tasks"]["adding"]["runs"]
    b = json.loads((killed / "results.json").read_text())["tasks"]["adding"]["runs"]
    assert b[0]["seconds"] == before[0]["seconds"]  # the finished point was kept, not run again
    assert [e["steps_run"] for e in a] == [e["steps_run"] for e in b] == [400, 400]
    for entry in (*a, *b):
        entry.pop("seconds")
    assert a == b  # test metrics of the final parameters, solved steps, gradient curves: all exact
    for point in POINTS:
        with np.load(whole / "runs" / f"{point}.npz") as x, np.load(killed / "runs" / f"{point}.npz") as y:
            assert sorted(x.files) == sorted(y.files)
            for name in x.files:  # every training curve, and dL/dh of the trained parameters
                np.testing.assert_array_equal(x[name], y[name], err_msg=f"{point}: {name}")

    # A folder written by another config is not resumed.
    other = subprocess.run([*interrupted, "--resume", "--seed", "1"], env=_env(), capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert other.returncode != 0 and "different config (differs in ['seed'])" in other.stderr, other.stderr[-2000:]
