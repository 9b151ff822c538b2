r"""Time-series forecasting: LSTM, GRU and tanh RNN against persistence, seasonal-naive and linear AR baselines.

Run (from the repository root):

    .venv/bin/python experiments/forecast.py --preset quick            # a few minutes on a 2-core CPU
    .venv/bin/python experiments/forecast.py --preset full --out runs/fc-full

Series: Mackey-Glass with tau = 17 (generated, :func:`rnnlab.data.mackey_glass`), Mauna Loa CO2
(monthly) and yearly sunspots (both bundled with statsmodels, :mod:`rnnlab.data.datasets`). Each
series is cut in time order into train / validation / test (the held-out tail); a standardizer is
fitted on the training part only; windows of ``input_length`` steps predict the next ``H``.

For every (series, horizon): the baselines (persistence ``x_t``; seasonal naive ``x_{t+h-m}``
where the series has a season ``m``; a linear autoregressive model on the window, fitted by least
squares on the training windows; and, for the series whose networks read relative windows and
forecast changes, the same least-squares model on what those networks read and predict, their fair
linear counterpart) and, for each cell and mapping (many-to-one: loss on the last
step's forecast; many-to-many: a loss on every step's forecast of its next ``H`` values; see
:mod:`rnnlab.forecasting`), ``seeds`` models trained with Adam on MSE, early-stopped on the
validation windows. Scores are RMSE and MAE over every test window and horizon step, in the
series' own units.

Writes ``runs/<name>/`` (``--out`` to change): ``config.json``, ``results.json``, per-run arrays
under ``runs/``, PNG plots and ``report.md``. The same ``--seed`` gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

import rnnlab
from rnnlab import cli, data, experiment, forecasting, runs
from rnnlab.experiment import fmt
from rnnlab.train import OptimizerConfig

CELLS = {
    "lstm": ("LSTM", lambda h: rnnlab.cells.lstm(h)),
    "gru": ("GRU", lambda h: rnnlab.cells.gru(h)),
    "rnn": ("tanh RNN", lambda h: rnnlab.cells.elman(h)),
}
BASELINES = {
    "persistence": "persistence",
    "seasonal_naive": "seasonal naive",
    "linear_ar": "linear AR",
    "linear_ar_relative": "linear AR, relative windows",
}
SERIES = ("mackey_glass", "co2", "sunspots")


@dataclasses.dataclass(frozen=True)
class Config:
    """One run of the experiment.

    Attributes:
        name: the run folder's name under ``runs/``.
        horizons: ``{series: (H, ...)}``, series from :data:`SERIES`.
        input_lengths: ``{series: L}``, the window each model reads.
        mackey_glass_length: samples of the generated series.
        fractions: train / validation / test shares, in time order.
        cells: ids from :data:`CELLS`.
        mappings: from :data:`rnnlab.forecasting.MAPPINGS`.
        hidden_size: units of every cell.
        ar_ridge: L2 penalty of the linear AR baseline (0: ordinary least squares).
        relative: the series whose networks see each window relative to its first value (``z - z_1``,
            standardized units) and forecast the change from each step's value
            (``rnnlab.forecasting.forecaster(changes=True)``), so they can follow a trend beyond the
            range of the training split (the CO2 series rises out of it); the others' networks read
            absolute standardized values. The first value, not the last, keeps every step's input free
            of later values, which the many-to-many loss at the earlier steps forecasts.
        seed: the experiment seed.
        train: how each model is trained.
    """

    name: str
    horizons: dict[str, tuple[int, ...]]
    input_lengths: dict[str, int]
    mackey_glass_length: int
    fractions: tuple[float, float, float]
    cells: tuple[str, ...]
    mappings: tuple[str, ...]
    hidden_size: int
    ar_ridge: float
    relative: tuple[str, ...]
    seed: int
    train: forecasting.ForecastSettings

    def __post_init__(self):
        unknown = sorted(set(self.horizons) - set(SERIES))
        if unknown or not self.horizons:
            raise ValueError(f"Config: unknown series {unknown}; choose from {list(SERIES)}")
        if set(self.input_lengths) != set(self.horizons):
            raise ValueError(f"Config: input_lengths must name the series of horizons {sorted(self.horizons)}")
        for s, hs in self.horizons.items():
            if not hs or any(not isinstance(h, int) or h < 1 for h in hs):
                raise ValueError(f"Config: horizons[{s!r}] must be ints >= 1; got {hs!r}")
        for name, group, known in (("cells", self.cells, CELLS), ("mappings", self.mappings, forecasting.MAPPINGS)):
            bad = sorted(set(group) - set(known))
            if bad or not group:
                raise ValueError(f"Config: unknown {name} {bad}; choose from {list(known)}")
        if not set(self.relative) <= set(SERIES):
            raise ValueError(f"Config: relative names unknown series {sorted(set(self.relative) - set(SERIES))}")
        rnnlab._checks.positive_int("Config", "hidden_size", self.hidden_size)
        rnnlab._checks.positive_int("Config", "mackey_glass_length", self.mackey_glass_length)
        rnnlab._checks.nonnegative("Config", "ar_ridge", self.ar_ridge)
        if not isinstance(self.train, forecasting.ForecastSettings):
            raise TypeError(f"Config: train must be a ForecastSettings; got {type(self.train).__name__}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _settings(seeds, steps, every, patience, lr=3e-3):
    return forecasting.ForecastSettings(
        seeds=seeds, batch_size=32, steps=steps, eval_every=every, patience=patience,
        optimizer=OptimizerConfig("adam", learning_rate=lr, clip="global_norm", clip_value=1.0),
    )  # fmt: skip


PRESETS = {
    # A few minutes on a 2-core CPU.
    "quick": Config(
        name="forecast-quick",
        horizons={"mackey_glass": (6,), "co2": (12,)},
        input_lengths={"mackey_glass": 32, "co2": 36},
        mackey_glass_length=2000,
        fractions=(0.7, 0.15, 0.15),
        cells=tuple(CELLS),
        mappings=forecasting.MAPPINGS,
        hidden_size=32,
        ar_ridge=0.0,
        relative=("co2",),
        seed=0,
        train=_settings(3, 1500, 50, 10),
    ),
    # Every series, a one-step and a longer horizon each.
    "full": Config(
        name="forecast-full",
        horizons={"mackey_glass": (1, 6, 24), "co2": (1, 12), "sunspots": (1, 5)},
        input_lengths={"mackey_glass": 48, "co2": 36, "sunspots": 22},
        mackey_glass_length=4000,
        fractions=(0.7, 0.15, 0.15),
        cells=tuple(CELLS),
        mappings=forecasting.MAPPINGS,
        hidden_size=32,
        ar_ridge=0.0,
        relative=("co2",),
        seed=0,
        train=_settings(5, 2000, 50, 10),
    ),
    # For the test suite: seconds.
    "tiny": Config(
        name="forecast-tiny",
        horizons={"mackey_glass": (2,)},
        input_lengths={"mackey_glass": 8},
        mackey_glass_length=300,
        fractions=(0.6, 0.2, 0.2),
        cells=("gru",),
        mappings=forecasting.MAPPINGS,
        hidden_size=4,
        ar_ridge=0.0,
        relative=("mackey_glass",),
        seed=0,
        train=_settings(2, 20, 10, 2),
    ),
}


def load_series(config: Config, name: str) -> tuple[np.ndarray, int | None, str]:
    """``(values (T,), season or None, unit)`` of series ``name``."""
    if name == "mackey_glass":
        return data.mackey_glass(config.mackey_glass_length), None, "x(t)"
    s = {"co2": data.datasets.co2, "sunspots": data.datasets.sunspots}[name]()
    return s.values, s.season, s.unit


class Prepared:
    """One series cut, standardized and windowed for one horizon (test windows also in raw units)."""

    def __init__(self, config: Config, name: str, horizon: int):
        values, self.season, self.unit = load_series(config, name)
        self.length = config.input_lengths[name]
        parts = data.chronological_split(values, config.fractions)
        self.scaler = data.Standardizer.fit(parts.train)
        self.z = [data.windows(self.scaler.transform(p), self.length, horizon) for p in parts]
        self.raw = [data.windows(p, self.length, horizon) for p in parts]
        # Each window's offset: its first standardized input when the networks work relative to it.
        self.relative = name in config.relative
        self.offsets = [w.inputs[:, :1] if self.relative else np.zeros_like(w.inputs[:, :1]) for w in self.z]
        self.net = [data.Windows(w.inputs - o, w.targets - o, w.start) for w, o in zip(self.z, self.offsets)]
        self.test_start = len(parts.train) + len(parts.validation)


def run_baseline(prep: Prepared, baseline: str, horizon: int, ridge: float) -> np.ndarray | None:
    """The baseline's test forecasts ``(N_test, H, 1)``, in raw units; None where it does not apply.

    ``"linear_ar_relative"`` is the least-squares AR fitted on exactly what the networks read and
    predict where they work on relative windows: the window relative to its first value, and the
    change from its last (the fair linear counterpart of a network there); it does not apply to a
    series the networks read in absolute values.
    """
    if baseline == "linear_ar_relative":
        if not prep.relative:
            return None
        train, test = prep.net[0], prep.net[2]
        ar = data.linear_autoregressive(train.inputs, train.targets - train.inputs[:, -1:], order=prep.length,
                                        ridge=ridge)  # fmt: skip
        return prep.scaler.inverse(ar(test.inputs) + test.inputs[:, -1:] + prep.offsets[2])
    test = prep.raw[2].inputs
    if baseline == "persistence":
        return data.persistence(test, horizon)
    if baseline == "seasonal_naive":
        if prep.season is None or prep.season > prep.length:
            return None
        return data.seasonal_naive(test, horizon, prep.season)
    train = prep.raw[0]
    return data.linear_autoregressive(train.inputs, train.targets, order=prep.length, ridge=ridge)(test)


def _entry(series, horizon, model, mapping, predictions, truth, **extra):
    """A results entry from ``predictions (N, B, H, 1)`` against ``truth (B, H, 1)``."""
    per = [data.errors(p, truth) for p in predictions]
    rmse, mae = np.array([e["rmse"] for e in per]), np.array([e["mae"] for e in per])
    return {
        "series": series, "horizon": horizon, "model": model, "mapping": mapping, "seeds": len(per),
        "rmse": {**runs.seed_stats(rmse), "per_seed": rmse}, "mae": {**runs.seed_stats(mae), "per_seed": mae},
        **extra,
    }  # fmt: skip


def run_name(series: str, horizon: int, model: str, mapping: str) -> str:
    return f"{series}_H{horizon}_{model}_{mapping}"


def run_experiment(config: Config, out: pathlib.Path, *, progress: bool = True, resume: bool = False) -> dict:
    """Runs every (series, horizon, baseline or cell x mapping) into ``out`` (:func:`rnnlab.experiment.run_grid`)."""
    prepared = {}

    def prep(series, horizon):
        if (series, horizon) not in prepared:
            prepared[(series, horizon)] = Prepared(config, series, horizon)
        return prepared[(series, horizon)]

    def run_one(point, k, n):
        series, horizon, model, mapping = point
        p = prep(series, horizon)
        truth = p.raw[2].targets
        arrays = {"truth": truth[:, -1, 0], "time": p.test_start + p.raw[2].start + p.length + horizon - 1}
        if model in BASELINES:
            pred = run_baseline(p, model, horizon, config.ar_ridge)
            if pred is None:
                why = "networks read absolute values" if model == "linear_ar_relative" else "no season"
                return {"series": series, "horizon": horizon, "model": model, "mapping": mapping, "seeds": 0,
                        "rmse": None, "mae": None, "skipped": why}, arrays  # fmt: skip
            return _entry(series, horizon, model, mapping, pred[None], truth), {**arrays, "prediction": pred[:, -1, 0]}
        cell = CELLS[model][1](config.hidden_size)
        f, result = forecasting.train_forecaster(
            cell, p.net[0], p.net[1], config.train, mapping=mapping, changes=p.relative, seed=config.seed,
            progress=progress,
            label=f"[{k + 1}/{n}] {series} H={horizon} {CELLS[model][0]} {mapping}",
        )  # fmt: skip
        pred = p.scaler.inverse(forecasting.predict_seeds(f, result.params, p.net[2].inputs) + p.offsets[2][None])
        entry = _entry(series, horizon, model, mapping, pred, truth, steps_run=result.steps,
                       best_step=result.best_step, validation_mse_z=result.best)  # fmt: skip
        arrays.update(prediction=pred[0, :, -1, 0], eval_step=result.history["eval_step"],
                      eval_mse=result.history["eval/mse"])  # fmt: skip
        return entry, arrays

    grid = [
        (s, h, m, mp)
        for s, hs in config.horizons.items()
        for h in hs
        for m, mp in [(b, "-") for b in BASELINES] + [(c, mp) for c in config.cells for mp in config.mappings]
    ]
    return experiment.run_grid(
        config.to_dict(), out, experiment="forecast", grid=grid, name_of=lambda point: run_name(*point),
        entry_name=lambda e: run_name(e["series"], e["horizon"], e["model"], e["mapping"]), run_one=run_one,
        findings=findings, make_plots=make_plots, report=report, resume=resume,
    )  # fmt: skip


def _label(e) -> str:
    if e["model"] in BASELINES:
        return BASELINES[e["model"]]
    return f"{CELLS[e['model']][0]} ({e['mapping'].replace('_', '-')})"


def _validation(e) -> float:
    """An entry's validation MSE (standardized units, mean over seeds); inf where it has none or is not finite."""
    v = np.mean(e.get("validation_mse_z") or np.inf)
    return float(v) if np.isfinite(v) else np.inf


def findings(results: dict) -> dict:
    """Per (series, horizon): the best baseline, the best recurrent model, and whether it beat the baseline.

    The recurrent model is chosen on the validation windows (lowest validation MSE, mean over seeds), and its
    test RMSE is compared with the strongest baseline's on the test windows: a bar no weaker than a baseline
    chosen on validation.
    """
    out = {}
    for s, hs in results["config"]["horizons"].items():
        for h in hs:
            es = [e for e in results["runs"] if e["series"] == s and e["horizon"] == h and e["rmse"]]
            base = min((e for e in es if e["model"] in BASELINES), key=lambda e: e["rmse"]["mean"])
            nets = [e for e in es if e["model"] not in BASELINES]
            best = min(nets, key=_validation) if nets else None
            out[f"{s} H={h}"] = {
                "best_baseline": _label(base),
                "best_baseline_rmse": base["rmse"]["mean"],
                "best_model": None if best is None else _label(best),
                "best_model_rmse": None if best is None else best["rmse"]["mean"],
                "best_model_rmse_std": None if best is None else best["rmse"]["std"],
                "best_model_validation_mse_z": None if best is None else _validation(best),
                "beats_baseline": None if best is None else bool(best["rmse"]["mean"] < base["rmse"]["mean"]),
                # rmse's max is over the finite seeds: a diverged seed does not beat anything.
                "beats_baseline_every_seed": None if best is None else bool(
                    best["rmse"]["max"] < base["rmse"]["mean"] and best["rmse"]["non_finite"] == 0
                ),
            }
    return out


def make_plots(results: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """Per (series, horizon): the test forecasts at the longest horizon step, and the validation curves."""
    from rnnlab import plots

    plt = plots.pyplot()
    cfg = results["config"]
    out = pathlib.Path(out)
    written = []
    for s, hs in cfg["horizons"].items():
        for h in hs:
            es = [e for e in results["runs"] if e["series"] == s and e["horizon"] == h and e["rmse"]]
            loaded = {}
            for e in es:
                with np.load(out / "runs" / f"{run_name(s, h, e['model'], e['mapping'])}.npz", allow_pickle=False) as z:
                    loaded[_label(e)] = {k: z[k] for k in z.files}
            fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), layout="constrained", width_ratios=(2, 1))
            first = next(iter(loaded.values()))
            axes[0].plot(first["time"], first["truth"], "k", lw=1.5, label="truth")
            palette = plots.colors(list(loaded))
            for label, z in loaded.items():
                if "prediction" in z and ("many-to-one" in label or label in ("persistence", "linear AR",
                                                                             "linear AR, relative windows")):
                    axes[0].plot(z["time"], z["prediction"], lw=1, color=palette[label], label=label)
            axes[0].set_xlabel("step of the series (test tail)")
            axes[0].set_title(f"{s}: forecasts {h} step(s) ahead on the test tail (first seed)", fontsize=9)
            axes[0].legend(fontsize=7)
            axes[0].grid(True, alpha=0.3)
            curves = {label: z["eval_mse"] for label, z in loaded.items() if "eval_mse" in z}
            for label, c in curves.items():
                steps = loaded[label]["eval_step"]
                axes[1].plot(steps, np.nanmedian(c, axis=1), color=palette[label], label=label, lw=1)
            axes[1].set_yscale("log")
            axes[1].legend(fontsize=6)
            axes[1].set_xlabel("training step")
            axes[1].set_ylabel("validation MSE (standardized), median over seeds")
            axes[1].grid(True, alpha=0.3)
            written.append(runs.save_figure(fig, out / f"forecast_{s}_H{h}.png"))
    return written


def report(results: dict) -> str:
    """``report.md``: RMSE and MAE per model next to the baselines."""
    cfg = results["config"]
    tr = cfg["train"]
    lines = [
        "# Time-series forecasting",
        "",
        f"Preset `{cfg['name']}`, seed {cfg['seed']}: {tr['seeds']} seeds per model, {cfg['hidden_size']} units, "
        f"Adam (learning rate {tr['optimizer']['learning_rate']}, gradient norm clipped at "
        f"{tr['optimizer']['clip_value']}), batches of {tr['batch_size']} random training windows, at most "
        f"{tr['steps']} steps, early stopping after {tr['patience']} validation checks ({tr['eval_every']} steps "
        f"apart) without improvement, each model's best validation parameters kept. Splits in time order "
        f"{tuple(cfg['fractions'])}; standardization fitted on the training split only"
        + (
            f"; for {', '.join(cfg['relative'])} the networks read each window relative to its first value and "
            "forecast the change from each step's value (the linear AR reads absolute values; the linear AR on "
            "relative windows reads and predicts what these networks do)"
            if cfg["relative"]
            else ""
        )
        + "; scores on the test tail in the series' units, over every test window and horizon step (mean ± "
        "standard deviation over seeds).",
        "",
        experiment.machine_line(results),
        "",
    ]
    for s, hs in cfg["horizons"].items():
        for h in hs:
            f = results["findings"][f"{s} H={h}"]
            lines += [
                f"## {s}, horizon {h} (window {cfg['input_lengths'][s]})",
                "",
                "| model | RMSE | MAE |",
                "|---|---|---|",
            ]
            es = [e for e in results["runs"] if e["series"] == s and e["horizon"] == h]
            for e in sorted(es, key=lambda e: np.inf if not e["rmse"] else e["rmse"]["mean"]):
                if not e["rmse"]:
                    lines.append(f"| {_label(e)} | n/a ({e.get('skipped', '')}) | |")
                    continue
                cells_ = [fmt(e[k]["mean"], 4) + ("" if e["seeds"] < 2 else f" ± {fmt(e[k]['std'], 2)}")
                          for k in ("rmse", "mae")]  # fmt: skip
                lines.append(f"| {_label(e)} | {cells_[0]} | {cells_[1]} |")
            if f["best_model"] is None:
                verdict = "n/a"
            elif f["beats_baseline_every_seed"]:
                verdict = "beats on every seed"
            elif f["beats_baseline"]:
                verdict = "beats on average (not on every seed)"
            else:
                verdict = "does not beat"
            lines += [
                "",
                f"Best recurrent model on the validation windows: {f['best_model']} (test RMSE "
                f"{fmt(f['best_model_rmse'], 4)}), which {verdict} the strongest baseline on the test windows, "
                f"{f['best_baseline']} (RMSE {fmt(f['best_baseline_rmse'], 4)}).",
                "",
                f"Figure: `forecast_{s}_H{h}.png`.",
                "",
            ]
    return "\n".join(lines)


def main(argv=None) -> dict:
    return cli.main(
        argv, description=__doc__.splitlines()[0], presets=PRESETS, run_experiment=run_experiment,
        findings=findings, make_plots=make_plots, report=report,
    )  # fmt: skip


if __name__ == "__main__":
    main()
