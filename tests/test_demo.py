"""The demo (the README's main command until the full experiment) runs and its numbers are sane."""

import importlib.util
import pathlib

import numpy as np


def test_demo_runs_small(capsys):
    path = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "demo.py"
    spec = importlib.util.spec_from_file_location("demo", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    ratios = demo.main(["--length", "12", "--seeds", "1"])
    assert set(ratios) >= {"tanh RNN, orthogonal", "LSTM, chrono"}
    assert all(np.isfinite(r) and r >= 0 for r in ratios.values())
    assert "first/last" in capsys.readouterr().out
