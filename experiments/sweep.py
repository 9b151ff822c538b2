"""A sweep over cells x tasks and lengths x hyperparameters x seeds, from a TOML or JSON config.

Run (from the repository root):

    .venv/bin/python experiments/sweep.py --config experiments/sweeps/quick.toml      # about a minute on a CPU
    .venv/bin/python experiments/sweep.py --config experiments/sweeps/quick.toml --resume   # after an interruption

The config's keys are the fields of :class:`rnnlab.sweep.SweepConfig` (``[train]`` those of
:class:`rnnlab.protocols.TrainSettings`). Seeds and learning rates train side by side in one
program per point; cells, lengths, hidden sizes, optimizers and clip values run in sequence.

Writes ``runs/<name>/`` (``--out`` to change): ``config.json``, ``results.json`` (rewritten after
every point), ``runs/<point>.npz`` (training histories), ``results.csv`` (one row per point and
learning rate, with 95% intervals) and ``report.md``; prints the table last.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from rnnlab import checkpoint, cli, distributed, sweep


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=pathlib.Path, required=True, help="a .toml or .json sweep config")
    parser.add_argument("--out", type=pathlib.Path, help="run folder (default runs/<the config's name>)")
    parser.add_argument("--resume", action="store_true", help="keep the finished points of an interrupted --out")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the earlier sweep in --out (its results.json and checkpoints) and start over")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    parser.add_argument("--checkpoint-seconds", type=float, default=checkpoint.DEFAULT_SECONDS, metavar="S",
                        help="checkpoint the training at most every S seconds (default %(default)g)")
    parser.add_argument("--mesh", type=cli.mesh_argument, metavar="SEEDS[xBATCH]",
                        help="split each point's models over SEEDS devices (and batches over BATCH), e.g. 8 or 4x2")
    parser.add_argument("--distributed", action="store_true", help="join a multi-host run first (rnnlab.distributed)")
    args = parser.parse_args(argv)
    if args.distributed:
        distributed.initialize()
    try:
        config = sweep.load_config(args.config)
    except (OSError, ValueError, TypeError) as e:
        parser.error(str(e))
    out = args.out or pathlib.Path("runs") / config.name
    cli.claim_folder_or_exit(out, args, parser)
    try:
        mesh = cli.make_mesh_or_exit(args.mesh, parser)
        with cli.interval_or_exit(args.checkpoint_seconds, parser), distributed.use_mesh(mesh):
            results = sweep.run_sweep(config, out, progress=not args.no_progress, resume=args.resume)
    except ValueError as e:  # --resume on a folder another config wrote
        parser.error(str(e))
    if not distributed.is_main_process():
        return results
    print(f"\nWrote {out}/ (results.json, results.csv, report.md) in {results['elapsed_s'] / 60:.1f} minutes.\n")
    print(sweep.to_markdown(results["table"]), end="")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
