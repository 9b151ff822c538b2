"""Executes the notebooks top to bottom in a fresh kernel and saves them with their outputs.

Run from the repository root (default: every notebook in this folder):

    .venv/bin/python notebooks/execute.py
    .venv/bin/python notebooks/execute.py notebooks/02_vanishing_gradient.ipynb

Each notebook runs in the ``python3`` kernel of this interpreter, on the CPU (``JAX_PLATFORMS=cpu``),
with the notebook's folder as working directory and figures drawn inline. Cells are saved without
execution timestamps, so re-running an unchanged notebook changes only what its code prints or draws.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def kernel_env(**extra: str) -> dict[str, str]:
    """The kernel's environment: this process's, on the CPU, plus ``extra``."""
    env = dict(os.environ)
    env["JAX_PLATFORMS"] = "cpu"
    env.update(extra)
    return env


def execute(path: pathlib.Path, *, timeout: int = 1800) -> None:
    """Runs the notebook at ``path`` in a fresh kernel and writes it back in place, outputs included."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    # Figures inline even where the calling shell sets another matplotlib backend.
    client.execute(env=kernel_env(MPLBACKEND="module://matplotlib_inline.backend_inline"))
    nbformat.write(nb, path)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path, help="default: every notebook in notebooks/")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        start = time.perf_counter()
        execute(path.resolve())
        size = path.stat().st_size / 1024
        print(f"{path}: executed in {time.perf_counter() - start:.0f} s, {size:.0f} KB", file=sys.stderr)


if __name__ == "__main__":
    main()
