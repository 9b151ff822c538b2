"""The command line every experiment script shares: presets, overrides, ``--resume``, ``--overwrite``, ``--replot``.

An experiment module defines ``PRESETS`` (``{name: Config}``, frozen dataclasses with a ``name``, a
``seed``, a ``train`` :class:`~rnnlab.protocols.TrainSettings` and, optionally, ``lengths`` and
``hidden_size``), ``run_experiment(config, out, progress=, resume=)``, ``findings(results)``,
``make_plots(results, out)`` and ``report(results)``, and calls :func:`main` with them. The options
here override a preset field by field; an experiment adds its own through ``add_arguments`` and
applies them in ``configure``.

``--config FILE`` reads a JSON or TOML file (:func:`rnnlab.config.load`, parsed, never evaluated) whose
keys override the chosen preset's fields, nested tables merging into nested settings
(:func:`rnnlab.config.merge`); the other options are applied after it, so they win. A key the
config has no field for, a value of the wrong type or out of range stops the command with a
message that names the key (and lists the valid keys), e.g. ``run.toml: unknown key
'train.optimizer.lerning_rate' (did you mean 'learning_rate'?); valid keys of train.optimizer: [...]``::

    # run.toml
    hidden_size = 32
    [train]
    steps = 2000
    [train.optimizer]
    name = "rmsprop"
    learning_rate = 1e-3

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_common_arguments(parser, ["quick", "full"])
    >>> args = parser.parse_args(["--preset", "full", "--steps", "10", "--lengths", "copy=100,200"])
    >>> args.preset, args.steps, args.lengths
    ('full', 10, {'copy': (100, 200)})
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from collections.abc import Callable, Iterable

from rnnlab import checkpoint, distributed, runs
from rnnlab import config as config_files
from rnnlab.train import OPTIMIZERS


def add_common_arguments(parser: argparse.ArgumentParser, presets: Iterable[str]) -> None:
    """Adds ``--preset``, ``--out``, the training overrides, ``--no-progress``, ``--replot``, ``--resume`` and
    ``--overwrite`` (a folder holding an earlier run needs one of the last two: :func:`rnnlab.runs.claim_folder`)."""
    presets = sorted(presets)
    parser.add_argument("--preset", choices=presets, default="quick" if "quick" in presets else presets[0])
    parser.add_argument("--out", type=pathlib.Path, help="run folder (default runs/<preset name>)")
    parser.add_argument(
        "--config", type=pathlib.Path, metavar="FILE", help="JSON or TOML file of preset fields to override"
    )
    parser.add_argument("--seed", type=int, help="experiment seed (default: the preset's)")
    parser.add_argument("--seeds", type=int, help="models trained per run")
    parser.add_argument("--steps", type=int, help="most training steps")
    parser.add_argument("--batch-size", type=int, help="training sequences per step")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="update rule")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument(
        "--matmul-dtype", choices=("bfloat16",),
        help="train and test with mixed-precision matmuls: bfloat16 operands, float32 products "
        "(rnnlab.precision; default: float32 throughout)",
    )  # fmt: skip
    parser.add_argument("--hidden", type=int, help="units per cell")
    parser.add_argument("--lengths", type=runs.parse_lengths, help="e.g. 'adding=100,200;copy=100'")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    parser.add_argument("--replot", action="store_true", help="redraw the plots and report of an existing --out")
    parser.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted --out: keep its finished runs, continue the one it was in from its checkpoint",
    )  # fmt: skip
    parser.add_argument(
        "--overwrite", action="store_true",
        help="delete the earlier run in --out (its results.json and checkpoints) and start over",
    )  # fmt: skip
    parser.add_argument(
        "--checkpoint-seconds", type=float, default=checkpoint.DEFAULT_SECONDS, metavar="S",
        help="checkpoint the training at most every S seconds (default %(default)g; 0: at every evaluation)",
    )  # fmt: skip
    parser.add_argument(
        "--mesh", type=mesh_argument, metavar="SEEDS[xBATCH]",
        help="split the models over SEEDS devices (and each model's batch over BATCH), e.g. 8 or 4x2",
    )  # fmt: skip
    parser.add_argument(
        "--distributed", action="store_true",
        help="join a multi-host run first (jax.distributed.initialize: from the cluster, or RNNLAB_COORDINATOR, "
        "RNNLAB_NUM_PROCESSES, RNNLAB_PROCESS_ID)",
    )  # fmt: skip


def mesh_argument(text: str) -> tuple[int, int]:
    """``--mesh``'s argparse type: :func:`rnnlab.distributed.parse_mesh`, its error as argparse's."""
    try:
        return distributed.parse_mesh(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def interval_or_exit(seconds: float, parser: argparse.ArgumentParser):
    """``--checkpoint-seconds`` as a :func:`rnnlab.checkpoint.interval` context; a negative value exits."""
    if not seconds >= 0:
        parser.error(f"--checkpoint-seconds must be >= 0; got {seconds}")
    return checkpoint.interval(seconds)


def make_mesh_or_exit(sizes: tuple[int, int] | None, parser: argparse.ArgumentParser):
    """The ``--mesh`` as a :class:`jax.sharding.Mesh` (None without it); too few devices exits with the count."""
    if sizes is None:
        return None
    try:
        return distributed.make_mesh(seeds=sizes[0], batch=sizes[1])
    except ValueError as e:
        parser.error(f"--mesh {sizes[0]}x{sizes[1]}: {e}")


def apply_config_file(config, path: pathlib.Path | None, parser: argparse.ArgumentParser):
    """``config`` with the fields of the JSON or TOML file ``path`` merged in (``None``: unchanged).

    A file that cannot be read or parsed, or a key or value the config rejects, exits through
    ``parser.error`` with the message.
    """
    if path is None:
        return config
    try:
        return config_files.merge(config, config_files.load(path), where=str(path))
    except OSError as e:
        parser.error(f"--config {path}: cannot read it: {e.strerror or e}")
    except (ValueError, TypeError) as e:
        parser.error(str(e))


def apply_common_arguments(config, args: argparse.Namespace, parser: argparse.ArgumentParser):
    """``config`` with the overrides given in ``args``; an override the config has no field for is an error.

    The ``--config`` file comes first (:func:`apply_config_file`), then the single options.
    """
    config = apply_config_file(config, getattr(args, "config", None), parser)
    try:
        return _apply_single_options(config, args, parser)
    except (ValueError, TypeError) as e:  # a value the config's checks refuse, e.g. --steps 0
        parser.error(str(e))


def _apply_single_options(config, args: argparse.Namespace, parser: argparse.ArgumentParser):
    train = config.train
    fields = {f.name for f in dataclasses.fields(config)}
    train_fields = {f.name for f in dataclasses.fields(train)}
    changes = {}
    single = (("seeds", args.seeds), ("steps", args.steps), ("batch_size", args.batch_size),
              ("matmul_dtype", args.matmul_dtype))  # fmt: skip
    for field, value in single:
        if value is None:
            continue
        if field in train_fields:
            train = dataclasses.replace(train, **{field: value})
        elif field in fields:  # e.g. seeds run one after another rather than inside the training settings
            changes[field] = value
        else:
            parser.error(f"--{field.replace('_', '-')}: this experiment has no {field} to override")
    if args.optimizer is not None or args.lr is not None:
        opt = train.optimizer
        lr = opt.learning_rate if args.lr is None else args.lr
        train = dataclasses.replace(train, optimizer=dataclasses.replace(opt, name=args.optimizer or opt.name,
                                                                         learning_rate=lr))  # fmt: skip
    changes["train"] = train
    if args.seed is not None:
        changes["seed"] = args.seed
    for option, field, value in (("--hidden", "hidden_size", args.hidden), ("--lengths", "lengths", args.lengths)):
        if value is None:
            continue
        if field not in fields:
            parser.error(f"{option}: this experiment has no {field} to override")
        changes[field] = value
    return dataclasses.replace(config, **changes)


def claim_folder_or_exit(out: pathlib.Path, args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """:func:`rnnlab.runs.claim_folder` for ``--out`` with ``--resume`` / ``--overwrite``; a refusal exits."""
    try:
        runs.claim_folder(out, resume=args.resume, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as e:
        parser.error(str(e))


def replot(out: pathlib.Path, findings: Callable, make_plots: Callable, report: Callable) -> dict:
    """Redraws the plots and ``report.md`` of the run folder ``out`` from its ``results.json``."""
    results = json.loads((pathlib.Path(out) / "results.json").read_text())
    results["findings"] = findings(results)
    make_plots(results, out)
    runs.atomic_write(pathlib.Path(out) / "report.md", report(results))
    print(f"Redrew the plots and report.md of {out}/")
    return results


def main(
    argv,
    *,
    description: str,
    presets: dict,
    run_experiment: Callable,
    findings: Callable,
    make_plots: Callable,
    report: Callable,
    add_arguments: Callable | None = None,
    configure: Callable | None = None,
) -> dict:
    """Parses ``argv`` and runs (or, with ``--replot``, redraws) one experiment; returns its results.

    Args:
        argv: the arguments (``None``: ``sys.argv[1:]``).
        description: the ``--help`` text's first line.
        presets: ``{name: config}``.
        run_experiment, findings, make_plots, report: the experiment's functions (module docstring).
        add_arguments: ``add_arguments(parser)`` adds the experiment's own options.
        configure: ``configure(config, args, parser) -> config`` applies them.
    """
    parser = argparse.ArgumentParser(description=description)
    add_common_arguments(parser, presets)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    if args.distributed:
        distributed.initialize()
    if args.replot:
        if args.out is None:
            parser.error("--replot needs --out, the run folder to redraw")
        return replot(args.out, findings, make_plots, report)
    config = apply_common_arguments(presets[args.preset], args, parser)
    if configure is not None:
        try:
            config = configure(config, args, parser)
        except (ValueError, TypeError) as e:  # the experiment's config refuses an option's value
            parser.error(str(e))
    out = args.out or pathlib.Path("runs") / config.name
    claim_folder_or_exit(out, args, parser)
    with interval_or_exit(args.checkpoint_seconds, parser), distributed.use_mesh(make_mesh_or_exit(args.mesh, parser)):
        results = run_experiment(config, out, progress=not args.no_progress, resume=args.resume)
    if distributed.is_main_process():
        print(report(results), file=sys.stdout)
        print(f"\nWrote {out}/ (results.json, report.md, plots)")
    return results
