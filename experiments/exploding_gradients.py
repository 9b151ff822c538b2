r"""Exploding gradients and clipping: plain tanh RNNs started below, at and above the edge of stability.

Run (from the repository root):

    .venv/bin/python experiments/exploding_gradients.py --preset quick            # a few minutes on a 2-core CPU
    .venv/bin/python experiments/exploding_gradients.py --preset full --out runs/eg-full

Pascanu, Mikolov & Bengio (2013) bound the error that flows from step T back to step t by

.. math::

    \|\partial h_T / \partial h_t\| \le (\lambda_1 \gamma)^{T - t},

with ``lambda_1`` the largest singular value of the recurrent matrix U and ``gamma`` the bound on
``|phi'|`` (1 for tanh). ``lambda_1 < 1 / gamma`` is sufficient for vanishing gradients, and
``lambda_1 > 1 / gamma`` necessary for exploding ones; they rescale the gradient when its norm
exceeds a threshold (SGD-C). For every (task, length, radius, clip) this script trains ``seeds``
tanh RNNs whose U starts as ``r Q`` (Q orthogonal, so every singular value is ``r``) and records:

1. the global gradient norm at every step, *before* clipping, and its cliffs (a step whose norm
   is at least ``cliff_factor`` times the median of the 20 steps before it);
2. ``lambda_1(U)`` at every step, on the parameters the step's gradient is taken at, so each
   cliff can be placed against ``1 / gamma``;
3. the singular values of ``dh_T / dh_t`` by lag (:func:`rnnlab.diagnostics.hidden_jacobian_singular_values`)
   at initialization and after training;
4. the success rate over seeds without clipping, clipping every component (``optax.clip``) and
   clipping the global norm (``optax.clip_by_global_norm``).

Writes ``runs/<name>/`` (``--out`` to change): ``config.json``, ``results.json``, per-run
histories under ``runs/``, PNG plots and ``report.md``. The same ``--seed`` gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab
from rnnlab import cli, diagnostics, experiment, protocols, runs, tasks
from rnnlab.experiment import fmt
from rnnlab.train import OptimizerConfig

# Clip id -> (label, optax clip name for OptimizerConfig). Thresholds are in Config.
CLIPS = {
    "none": ("no clipping", None),
    "value": ("clip by value", "value"),
    "norm": ("clip by global norm", "global_norm"),
}

GAMMA = 1.0  # max |tanh'|

PUBLISHED = {
    "setting": "Pascanu et al. 2013: 50 hidden tanh units, SGD learning rate 0.01, batch 20, gradient norm "
    "clipped at 1.0 (SGD-C); temporal order success = fewer than 1% of 10,000 fresh sequences wrong.",
    "claims": "lambda_1 < 1/gamma is sufficient for vanishing gradients and lambda_1 > 1/gamma necessary for "
    "exploding ones (gamma = 1 for tanh); exploding gradients appear as cliffs in the error surface, and "
    "rescaling the gradient norm (SGD-C) lets SGD cross them.",
}


@dataclasses.dataclass(frozen=True)
class Config:
    """One run of the experiment.

    Attributes:
        name: the run folder's name under ``runs/``.
        lengths: ``{task name: lengths}``; tasks from :mod:`rnnlab.tasks`.
        radii: initial spectral radius (= every singular value) of the recurrent matrix.
        clips: ids from :data:`CLIPS`.
        hidden_size: units of the tanh RNN.
        clip_norm: the global-norm threshold.
        clip_value: the per-component threshold.
        cliff_factor: a step is a cliff when its gradient norm is at least this many times the
            median of the 20 steps before it.
        seed: the experiment seed.
        train: how each run is trained and scored; its optimizer's clip is replaced per run.
    """

    name: str
    lengths: dict[str, tuple[int, ...]]
    radii: tuple[float, ...]
    clips: tuple[str, ...]
    hidden_size: int
    clip_norm: float
    clip_value: float
    cliff_factor: float
    seed: int
    train: protocols.TrainSettings

    def __post_init__(self):
        experiment.check_selection("clip", self.clips, CLIPS)
        experiment.check_lengths(self.lengths)
        if not self.radii or any(not isinstance(r, (int, float)) or not r > 0 for r in self.radii):
            raise ValueError(f"Config: radii must be positive numbers; got {self.radii!r}")
        rnnlab._checks.positive_int("Config", "hidden_size", self.hidden_size)
        for name in ("clip_norm", "clip_value", "cliff_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Config: {name} must be > 0; got {getattr(self, name)!r}")
        if not isinstance(self.seed, int):
            raise TypeError(f"Config: seed must be an int; got {self.seed!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def optimizer(self, clip: str) -> OptimizerConfig:
        """The training optimizer with clip ``clip`` (an id from :data:`CLIPS`)."""
        kind = CLIPS[clip][1]
        value = {"value": self.clip_value, "global_norm": self.clip_norm, None: 1.0}[kind]
        return dataclasses.replace(self.train.optimizer, clip=kind, clip_value=value)


def _settings(seeds, batch, steps, every, eval_size, test_size, grad_size, lr):
    return protocols.TrainSettings(
        seeds=seeds, batch_size=batch, steps=steps, eval_every=every, eval_size=eval_size, test_size=test_size,
        grad_size=grad_size, optimizer=OptimizerConfig("sgd", learning_rate=lr, clip=None),
    )  # fmt: skip


PRESETS = {
    # A few minutes on a 2-core CPU: the cliffs above radius 1, and what each clip does with them.
    "quick": Config(
        name="exploding_gradients-quick",
        lengths={"temporal_order_pascanu": (50,), "adding": (50,)},
        radii=(0.8, 1.0, 1.5),
        clips=tuple(CLIPS),
        hidden_size=50,
        clip_norm=1.0,
        clip_value=1.0,
        cliff_factor=10.0,
        seed=0,
        train=_settings(4, 20, 1500, 100, 256, 1024, 32, 0.05),
    ),
    # Pascanu's model size and batch at three lengths; about an hour on a 2-core CPU.
    "full": Config(
        name="exploding_gradients-full",
        lengths={"temporal_order_pascanu": (25, 50, 100), "adding": (25, 50, 100)},
        radii=(0.8, 1.0, 1.5),
        clips=tuple(CLIPS),
        hidden_size=50,
        clip_norm=1.0,
        clip_value=1.0,
        cliff_factor=10.0,
        seed=0,
        train=_settings(6, 20, 3000, 250, 500, 1000, 50, 0.05),
    ),
    # For the test suite: seconds.
    "tiny": Config(
        name="exploding_gradients-tiny",
        lengths={"temporal_order_pascanu": (12,)},
        radii=(0.8, 2.0),
        clips=("none", "norm"),
        hidden_size=4,
        clip_norm=1.0,
        clip_value=1.0,
        cliff_factor=10.0,
        seed=0,
        train=_settings(2, 8, 40, 10, 16, 32, 4, 0.05),
    ),
}


def cell_for(config: Config, radius: float) -> rnnlab.cells.Cell:
    """The tanh RNN with U = radius * Q (Q orthogonal): every singular value of U is ``radius``."""
    return rnnlab.cells.elman(config.hidden_size, spectral_radius=float(radius))


def sigma_max(params) -> dict:
    """``lambda_1``: the largest singular value of a sequence model's recurrent matrix U."""
    return {"sigma_max": jnp.linalg.norm(params.core.recurrent_kernel, ord=2)}


def cliffs(grad_norm: np.ndarray, factor: float, window: int = 20) -> list[np.ndarray]:
    """Per model, the 1-based steps whose gradient norm is >= ``factor`` x the median of the ``window`` before.

    Args:
        grad_norm: ``(S, N)`` global gradient norms before clipping.
        factor: how many times the recent median a cliff must reach.
        window: steps the median is taken over (a step needs a full window behind it).

    Returns:
        ``N`` arrays of steps, ascending.

    Example:
        >>> g = np.ones((30, 1)); g[25, 0] = 50.0
        >>> cliffs(g, 10.0)
        [array([26])]
    """
    g = np.asarray(grad_norm, np.float64)
    steps, n = g.shape
    out = []
    for m in range(n):
        found = []
        for s in range(window, steps):
            recent = np.median(g[s - window : s, m])
            if np.isfinite(g[s, m]) and np.isfinite(recent) and g[s, m] >= factor * recent:
                found.append(s + 1)
        out.append(np.asarray(found, np.int64))
    return out


def _jacobian_by_lag(cell, params, xs) -> np.ndarray:
    """Largest singular value of ``dh_T/dh_t`` by lag 0..T-1 for each seed's params, on one sequence."""
    top = jax.jit(jax.vmap(lambda p: diagnostics.hidden_jacobian_singular_values(cell, p.core, xs)[:, 0]))
    return np.asarray(top(params), np.float64)[:, ::-1]


def last_finite(series: np.ndarray) -> np.ndarray:
    """Per model, the last finite value of an ``(S, N)`` series (NaN where there is none).

    A model's rows after it finished training are NaN (:class:`rnnlab.fit.FitResult`), so its last
    finite row is its value at the end of its own run.

    Example:
        >>> last_finite(np.array([[1.0, 2.0], [3.0, np.nan]]))
        array([3., 2.])
    """
    finite = np.isfinite(series)
    rows = series.shape[0] - 1 - np.argmax(finite[::-1], axis=0)
    return np.where(finite.any(axis=0), series[rows, np.arange(series.shape[1])], np.nan)


def pascanu_solved(error_rate, test_size: int) -> np.ndarray:
    """Pascanu et al.'s success rule per seed: fewer than 1% of the ``test_size`` test sequences wrong.

    ``error_rate`` is each seed's mean over the test batches of the share wrong; the count is
    rounded from it, so that exactly 1% wrong fails however the batches' float means round.
    """
    wrong = np.rint(np.asarray(error_rate, np.float64) * test_size)
    return wrong < 0.01 * test_size


def summarize(run: protocols.TaskRun, config: Config, cell, task, length: int, radius: float, clip: str) -> tuple:
    """The results.json entry of one run, and the arrays kept in its ``.npz``."""
    metric = run.test[run.metric]
    h = run.history
    grad_norm = h["train/grad_norm"]
    found = cliffs(grad_norm, config.cliff_factor)
    sigma = h["train/sigma_max"]  # (S, N): at the parameters each step's gradient was taken at
    at_cliff = [sigma[c - 1, m] for m, c in enumerate(found)]
    all_at = np.concatenate(at_cliff) if at_cliff else np.zeros(0)
    xs = task.sample(protocols.run_keys(config.seed, task.name, length)["test"], 1, length).inputs[0]
    jac = {"init": _jacobian_by_lag(cell, run.init_params, xs), "trained": _jacobian_by_lag(cell, run.params, xs)}
    pascanu_success = pascanu_solved(run.test["error_rate"], config.train.test_size)
    entry = {
        "task": task.name,
        "length": length,
        "radius": radius,
        "clip": clip,
        "metric": run.metric,
        "baseline": run.baseline,
        "seeds": int(metric.size),
        "success_rate": float(run.solved.mean()),
        "solved": run.solved,
        "pascanu_success_rate": float(np.mean(pascanu_success & (run.diverged_step < 0))),
        "test_metric": {**runs.seed_stats(metric), "per_seed": metric},
        "per_sequence_success_rate": runs.seed_stats(run.test["success_rate"]),
        "diverged_step": run.diverged_step,
        # Seeds that met a non-finite gradient: stopped there, or (on_nonfinite="skip") had that update skipped.
        "diverged": int(np.sum(run.hit_nonfinite)),
        "skipped_updates": run.skipped,
        "grad_norm_max": runs.seed_stats(np.nanmax(np.where(np.isfinite(grad_norm), grad_norm, np.nan), axis=0)),
        "grad_norm_median": runs.seed_stats(np.nanmedian(np.where(np.isfinite(grad_norm), grad_norm, np.nan), axis=0)),
        "cliffs_per_seed": [int(c.size) for c in found],
        "first_cliff_step": [int(c[0]) if c.size else -1 for c in found],
        "sigma_max_at_first_cliff": [float(s[0]) if s.size else None for s in at_cliff],
        "cliffs_with_sigma_above_1_over_gamma": int(np.sum(all_at > 1.0 / GAMMA)),
        "cliffs_total": int(all_at.size),
        "sigma_max_init": runs.seed_stats(sigma[0]),
        "sigma_max_final": runs.seed_stats(last_finite(sigma)),
        "jacobian_top_sv_by_lag": {k: runs.seed_stats(v[:, -1]) for k, v in jac.items()},
        "steps_run": run.steps,
        "seconds": run.seconds,
    }
    arrays = {
        "step": h["step"],
        "grad_norm": grad_norm,
        "update_norm": h.get("train/update_norm", np.zeros(0)),
        "loss": h["train/loss"],
        "eval_step": h["eval_step"],
        "sigma_max": sigma,
        f"eval.{run.metric}": h[f"eval/{run.metric}"],
        "jacobian_init": jac["init"],
        "jacobian_trained": jac["trained"],
    }
    return entry, arrays


def run_name(task: str, length: int, radius: float, clip: str) -> str:
    return f"{task}_T{length}_r{radius:g}_{clip}"


def run_experiment(config: Config, out: pathlib.Path, *, progress: bool = True, resume: bool = False) -> dict:
    """Runs every (task, length, radius, clip) of ``config`` into the run folder ``out``
    (:func:`rnnlab.experiment.run_grid`; ``resume`` keeps the finished runs of an interrupted one)."""

    def run_one(point, k, n):
        task_name, length, radius, clip = point
        task = tasks.get(task_name)
        cell = cell_for(config, radius)
        settings = dataclasses.replace(config.train, optimizer=config.optimizer(clip))
        run = protocols.train_on_task(
            cell, task, length, settings, seed=config.seed, progress=progress, watch=sigma_max,
            label=f"[{k + 1}/{n}] {task_name} T={length} r={radius:g} {CLIPS[clip][0]}",
        )  # fmt: skip
        return summarize(run, config, cell, task, length, radius, clip)

    grid = [(t, n, r, c) for t, ns in config.lengths.items() for n in ns for r in config.radii for c in config.clips]
    rule = f"a seed solves a task when its test loss <= {config.train.solve_fraction} x the baseline"
    return experiment.run_grid(
        config.to_dict(), out, experiment="exploding_gradients", grid=grid, name_of=lambda point: run_name(*point),
        entry_name=lambda e: run_name(e["task"], e["length"], e["radius"], e["clip"]), run_one=run_one,
        findings=findings, make_plots=make_plots, report=report, header={"published": PUBLISHED, "solve_rule": rule},
        resume=resume,
    )  # fmt: skip


def _entry(results: dict, task: str, length: int, radius: float, clip: str) -> dict | None:
    for e in results["runs"]:
        if (e["task"], e["length"], e["radius"], e["clip"]) == (task, length, radius, clip):
            return e
    return None


def findings(results: dict) -> dict:
    """The numbers the report's claims rest on, pooled over tasks and lengths."""
    cfg = results["config"]
    out = {"by_radius_clip": {}}
    for r in cfg["radii"]:
        for c in cfg["clips"]:
            es = [e for e in results["runs"] if e["radius"] == r and e["clip"] == c]
            seeds = sum(e["seeds"] for e in es)
            out["by_radius_clip"][f"r={r:g} {c}"] = {
                "solved": int(sum(round(e["success_rate"] * e["seeds"]) for e in es)),
                "diverged": int(sum(e["diverged"] for e in es)),
                "seeds": int(seeds),
                "cliffs": int(sum(e["cliffs_total"] for e in es)),
                "cliffs_with_sigma_above_1_over_gamma": int(sum(e["cliffs_with_sigma_above_1_over_gamma"] for e in es)),
            }
    out["by_clip"] = {}
    for c in cfg["clips"]:
        es = [e for e in results["runs"] if e["clip"] == c]
        out["by_clip"][c] = {
            "solved": int(sum(round(e["success_rate"] * e["seeds"]) for e in es)),
            "diverged": int(sum(e["diverged"] for e in es)),
            "seeds": int(sum(e["seeds"] for e in es)),
        }
    total = sum(v["cliffs"] for v in out["by_radius_clip"].values())
    above = sum(v["cliffs_with_sigma_above_1_over_gamma"] for v in out["by_radius_clip"].values())
    out["cliffs_total"] = total
    out["cliffs_with_sigma_above_1_over_gamma"] = above
    return out


def make_plots(results: dict, out: pathlib.Path) -> list[pathlib.Path]:
    """Writes the PNG figures of every task; returns their paths."""
    from rnnlab import plots

    plt = plots.pyplot()
    cfg = results["config"]
    radii, clips = cfg["radii"], cfg["clips"]
    written = []
    for task, lengths in cfg["lengths"].items():
        longest = max(lengths)

        def load(r, c, task=task, length=longest):
            with np.load(out / "runs" / f"{run_name(task, length, r, c)}.npz", allow_pickle=False) as z:
                return {k: z[k] for k in z.files}

        # 1. Gradient-norm traces before clipping, one panel per (radius, clip), every seed.
        fig, axes = plt.subplots(
            len(radii), len(clips), figsize=(4 * len(clips), 2.6 * len(radii)), squeeze=False, sharex=True,
            sharey=True, layout="constrained",
        )  # fmt: skip
        for i, r in enumerate(radii):
            for j, c in enumerate(clips):
                z, ax = load(r, c), axes[i, j]
                ax.semilogy(z["step"], z["grad_norm"], lw=0.6, alpha=0.8)
                for m, marks in enumerate(cliffs(z["grad_norm"], cfg["cliff_factor"])):
                    if marks.size:
                        ax.plot(marks, z["grad_norm"][marks - 1, m], "kv", ms=3)
                if c != "none":
                    thr = cfg["clip_norm"] if c == "norm" else cfg["clip_value"]
                    ax.axhline(thr, color="gray", ls=":", lw=0.8)
                ax.set_title(f"r = {r:g}, {CLIPS[c][0]}", fontsize=9)
                if j == 0:
                    ax.set_ylabel("gradient norm (before clip)")
                if i == len(radii) - 1:
                    ax.set_xlabel("training step")
        fig.suptitle(f"{task}, T = {longest}: global gradient norm per step, one line per seed (v: cliffs)")
        written.append(runs.save_figure(fig, out / f"grad_norm_{task}.png"))

        # 2. lambda_1(U) over training against 1/gamma, with the cliffs placed on it (no clipping).
        c0 = "none" if "none" in clips else clips[0]
        fig, axes = plt.subplots(1, len(radii), figsize=(4 * len(radii), 3.4), squeeze=False, layout="constrained")
        for i, r in enumerate(radii):
            z, ax = load(r, c0), axes[0, i]
            for m in range(z["sigma_max"].shape[1]):
                (line,) = ax.semilogy(z["step"], z["sigma_max"][:, m], lw=1)
                marks = cliffs(z["grad_norm"], cfg["cliff_factor"])[m]
                if marks.size:
                    ax.plot(marks, z["sigma_max"][marks - 1, m], "v", color=line.get_color(), ms=4)
            ax.axhline(1.0 / GAMMA, color="k", ls="--", lw=0.8, label=r"$1/\gamma$")
            finite = z["sigma_max"][np.isfinite(z["sigma_max"])]
            if finite.size:  # a diverging seed's lambda_1 runs off to 1e6 and beyond: keep the crossing in view
                ax.set_ylim(0.8 * min(finite.min(), 1.0 / GAMMA), min(max(finite.max(), 1.0 / GAMMA) * 1.25, 10.0))
            ax.set_title(f"start r = {r:g}", fontsize=9)
            ax.set_xlabel("training step")
        axes[0, 0].set_ylabel(r"$\lambda_1(U)$, largest singular value")
        axes[0, 0].legend(fontsize=8)
        fig.suptitle(f"{task}, T = {longest}, {CLIPS[c0][0]}: where the cliffs (v) fall against 1/gamma")
        written.append(runs.save_figure(fig, out / f"sigma_max_{task}.png"))

        # 3. ||dh_T/dh_t|| by lag at init and after training (seed mean of the largest singular value).
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, layout="constrained")
        for ax, when in zip(axes, ("init", "trained")):
            curves = {}
            for r in radii:
                jac = load(r, c0)[f"jacobian_{when}"]
                curves[f"r = {r:g}"] = np.exp(np.nanmean(np.log(np.maximum(jac, 1e-300)), axis=0))[::-1]
            plots.gradient_flow(ax, curves, title=f"{'at init' if when == 'init' else 'trained'}, {CLIPS[c0][0]}")
            ax.set_ylabel(r"$\sigma_1(\partial h_T/\partial h_t)$ (geometric mean over seeds)")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{task}, T = {longest}: the largest singular value of the Jacobian product by lag")
        written.append(runs.save_figure(fig, out / f"jacobian_{task}.png"))

        # 4. Success rate against length for every (radius, clip).
        fig, axes = plt.subplots(1, len(clips), figsize=(4 * len(clips), 3.6), squeeze=False, sharey=True,
                                 layout="constrained")  # fmt: skip
        for j, c in enumerate(clips):
            rates = {f"r = {r:g}": [_entry(results, task, n, r, c)["success_rate"] for n in lengths] for r in radii}
            plots.versus_length(axes[0, j], list(lengths), rates, ylabel="fraction of seeds that solve the task")
            axes[0, j].set_title(CLIPS[c][0], fontsize=9)
            axes[0, j].set_ylim(-0.05, 1.05)
        axes[0, 0].legend(fontsize=8)
        fig.suptitle(f"{task}: success rate over seeds by initial radius and clipping")
        written.append(runs.save_figure(fig, out / f"success_{task}.png"))
    return written


def report(results: dict) -> str:
    """``report.md``: the findings in numbers, next to the published ones."""
    cfg = results["config"]
    tr = cfg["train"]
    opt = tr["optimizer"]
    f = results["findings"]
    lines = [
        "# Exploding gradients and clipping in tanh RNNs",
        "",
        f"Preset `{cfg['name']}`, seed {cfg['seed']}: {tr['seeds']} seeds per run, {cfg['hidden_size']} tanh units "
        f"with U = r Q (Q orthogonal) for r in {', '.join(f'{r:g}' for r in cfg['radii'])}; batch "
        f"{tr['batch_size']}, at most {tr['steps']} steps of {opt['name']} (learning rate {opt['learning_rate']}); "
        f"clipping by global norm at {cfg['clip_norm']}, by value at {cfg['clip_value']}. "
        f"{results['solve_rule'][0].upper() + results['solve_rule'][1:]}. A cliff is a step whose gradient norm "
        f"(before clipping) is at least {cfg['cliff_factor']:g} x the median of the 20 steps before it; "
        "lambda_1(U) is recorded at every step, on the parameters that step's gradient is taken at.",
        "",
        experiment.machine_line(results),
        "",
        "## Cliffs against lambda_1(U)",
        "",
        f"Of {f['cliffs_total']} cliffs over every run, {f['cliffs_with_sigma_above_1_over_gamma']} came while the "
        "largest singular value of U was above 1/gamma = 1.",
        "",
        "| start r | clip | solved | diverged (NaN) | cliffs | of which lambda_1 > 1 |",
        "|---|---|---|---|---|---|",
    ]
    for key, v in f["by_radius_clip"].items():
        r, c = key.split(" ")
        lines.append(
            f"| {r[2:]} | {CLIPS[c][0]} | {v['solved']}/{v['seeds']} | {v['diverged']} | {v['cliffs']} | "
            f"{v['cliffs_with_sigma_above_1_over_gamma']} |"
        )
    lines += ["", "Pooled over every task and length.", ""]
    said = "; ".join(
        f"{CLIPS[c][0]}: {v['diverged']} of {v['seeds']} seeds diverged (a non-finite gradient), {v['solved']} solved"
        for c, v in f["by_clip"].items()
    )
    lines += [f"By clip, over every start radius, task and length: {said}.", ""]
    if tr.get("on_nonfinite") == "skip":
        lines += [
            'This run trained with on_nonfinite = "skip": a seed counted as diverged met a non-finite gradient, '
            "had that update skipped and trained on (`skipped_updates` in results.json counts them per seed).",
            "",
        ]
    above = f["cliffs_with_sigma_above_1_over_gamma"]
    if f["cliffs_total"]:
        verdict = "holds" if above == f["cliffs_total"] else "does not hold for every cliff"
        lines += [
            f"Pascanu et al.'s necessary condition for explosion, lambda_1 > 1/gamma, {verdict} here: "
            f"{above} of {f['cliffs_total']} cliffs were taken at parameters with lambda_1(U) > 1.",
            "",
        ]
    for task, lengths in cfg["lengths"].items():
        lines += [f"## {task}", "", "| start r | clip | " + " | ".join(f"T = {n}" for n in lengths) + " |"]
        lines.append("|---|---|" + "---|" * len(lengths))
        for r in cfg["radii"]:
            for c in cfg["clips"]:
                row = []
                for n in lengths:
                    e = _entry(results, task, n, r, c)
                    t, g = e["test_metric"], e["grad_norm_max"]
                    row.append(
                        f"{round(e['success_rate'] * e['seeds'])}/{e['seeds']} solved, {e['diverged']} NaN, "
                        f"{e['metric']} {fmt(t['mean'])} ± {fmt(t['std'], 2)}, max grad {fmt(g['max'], 2)}"
                    )
                lines.append(f"| {r:g} | {CLIPS[c][0]} | " + " | ".join(row) + " |")
        base = [fmt(_entry(results, task, n, cfg["radii"][0], cfg["clips"][0])["baseline"], 4) for n in lengths]
        lines.append("| *baseline* | | " + " | ".join(base) + " |")
        lines += ["", "Test loss: mean ± standard deviation over seeds, each scored with its parameters at its best "
                  "validation loss (for a seed that diverged, the best before the divergence); max grad: the "
                  "largest gradient norm any seed met.", ""]  # fmt: skip
        longest = max(lengths)
        lines += [
            f"At T = {longest}, seed means: the largest singular value of dh_T/dh_1 at init and at each seed's kept "
            "parameters (those of its best validation loss, as scored above), and lambda_1(U) at init and at the "
            "end of training (the last step where it was finite: for a seed that diverged, just before, which can "
            "lie far from its kept parameters).",
            "",
            "| start r | clip | dh_T/dh_1 at init | kept | lambda_1(U) at init | end of training |",
            "|---|---|---|---|---|---|",
        ]
        for r in cfg["radii"]:
            for c in cfg["clips"]:
                e = _entry(results, task, longest, r, c)
                j = e["jacobian_top_sv_by_lag"]
                lines.append(
                    f"| {r:g} | {CLIPS[c][0]} | {fmt(j['init']['mean'])} | {fmt(j['trained']['mean'])} | "
                    f"{fmt(e['sigma_max_init']['mean'])} | {fmt(e['sigma_max_final']['mean'])} |"
                )
        lines += [
            "",
            f"Figures: `grad_norm_{task}.png`, `sigma_max_{task}.png`, `jacobian_{task}.png`, `success_{task}.png`.",
            "",
        ]
    lines += [
        "## Published",
        "",
        PUBLISHED["claims"],
        "",
        PUBLISHED["setting"],
        "",
        "Differences from the published setting: the learning rate and step budget are the preset's (above); the "
        "adding problem is the Arjovsky et al. (2016) form (sum of two values marked in the two halves) rather than "
        "Pascanu's generator (mean of the values, lengths in [T, 1.1 T)); a seed solves a task by the test-loss rule "
        "above, and the per-sequence rule of Pascanu's temporal order (fewer than 1% of the test sequences wrong) is "
        "in `results.json` as `pascanu_success_rate`. The paper's success-rate figures are not reproduced number for "
        "number: the comparison is with its claims.",
        "",
    ]
    return "\n".join(lines)


def _add_arguments(parser):
    parser.add_argument("--radii", help="comma-separated initial radii of U")


def _configure(config: Config, args, parser) -> Config:
    if args.radii is None:
        return config
    try:
        radii = tuple(float(r) for r in args.radii.split(",") if r.strip())
    except ValueError:
        parser.error(f"--radii: expected comma-separated numbers; got {args.radii!r}")
    return dataclasses.replace(config, radii=radii)


def main(argv=None) -> dict:
    return cli.main(
        argv, description=__doc__.splitlines()[0], presets=PRESETS, run_experiment=run_experiment,
        findings=findings, make_plots=make_plots, report=report, add_arguments=_add_arguments, configure=_configure,
    )  # fmt: skip


if __name__ == "__main__":
    main()
