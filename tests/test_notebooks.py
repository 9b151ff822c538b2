"""The notebooks under notebooks/ run top to bottom in a fresh kernel, at small sizes.

Each notebook's first code cell is tagged ``parameters`` and holds its sizes; the test inserts a cell
after it that reassigns them to the values in :data:`SMALL`, then executes every cell with nbclient
in the ``python3`` kernel of this interpreter and fails on the first cell error. The notebooks check
themselves with ``assert`` / ``np.testing`` lines, so a cell error is also a wrong result.

The selected notebooks run concurrently, each in its own kernel process: at small sizes they spend
their time compiling, one core each, so two cores finish them in about half the time.
"""

from __future__ import annotations

import ast
import asyncio
import os
import pathlib

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))

# Sizes that keep each notebook to seconds. Every notebook needs an entry, and each entry may only
# name variables its parameters cell defines (test_overrides_name_parameters).
SMALL = {
    "01_cells_by_hand.ipynb": dict(HIDDEN=4, INPUT=2, BATCH=3, TIME=6, TRAIN_STEPS=20),
    "02_vanishing_gradient.ipynb": dict(
        HIDDEN=4,
        JACOBIAN_LENGTH=8,
        LAG_LENGTH=12,
        GRAD_BATCH=4,
        TRAIN_LENGTH=10,
        SEEDS=2,
        STEPS=10,
        EVAL_EVERY=5,
        BATCH_SIZE=4,
        EVAL_SIZE=8,
        TEST_SIZE=8,
    ),
    "03_forecasting.ipynb": dict(
        MG_LENGTH=300,
        MG_INPUT_LENGTH=8,
        MG_HORIZON=2,
        CO2_INPUT_LENGTH=12,
        CO2_HORIZON=2,
        HIDDEN=4,
        SEEDS=1,
        STEPS=10,
        EVAL_EVERY=5,
        PATIENCE=1,
        BATCH_SIZE=8,
    ),
}

# The small settings are compile-bound: XLA's unoptimized CPU backend roughly halves their compile time
# (it changes how fast the compiled code runs, not what it computes).
XLA_FLAGS = "--xla_backend_optimization_level=0"

nbformat = pytest.importorskip("nbformat")


def parameters_cell(nb):
    """The index of the notebook's parameters cell (raises unless it is the first code cell)."""
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    tagged = [i for i in code if "parameters" in cell_tags(nb.cells[i])]
    assert code and tagged == code[:1], (
        f"the first code cell, and only it, must be tagged 'parameters'; tagged: {tagged}"
    )
    return tagged[0]


def cell_tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def assigned_names(source: str) -> set[str]:
    """Names bound at the top level of ``source`` by plain or annotated assignment."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_overrides_name_parameters(path):
    """A renamed parameter cannot leave a notebook running at full size under the test."""
    assert path.name in SMALL, f"add small settings for {path.name} to SMALL"
    nb = nbformat.read(path, as_version=4)
    defined = assigned_names(nb.cells[parameters_cell(nb)].source)
    unknown = sorted(set(SMALL[path.name]) - defined)
    assert not unknown, (
        f"{path.name}: SMALL overrides {unknown}, which its parameters cell does not define {sorted(defined)}"
    )


def test_every_notebook_is_tested():
    assert PATHS, f"no notebooks found under {NOTEBOOKS}"
    assert sorted(SMALL) == [p.name for p in PATHS]


async def execute(path: pathlib.Path) -> None:
    """Runs the notebook at ``path`` with its :data:`SMALL` settings; raises on the first cell error."""
    import nbclient

    nb = nbformat.read(path, as_version=4)
    small = "\n".join(f"{name} = {value!r}" for name, value in SMALL[path.name].items())
    nb.cells.insert(parameters_cell(nb) + 1, nbformat.v4.new_code_cell("# small settings (tests)\n" + small))
    xla_flags = f"{os.environ.get('XLA_FLAGS', '')} {XLA_FLAGS}".strip()
    env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", XLA_FLAGS=xla_flags)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    await client.async_execute(env=env)  # CellExecutionError shows the cell and its traceback


@pytest.fixture(scope="module")
def executed(request) -> dict:
    """``{path: None or the exception}`` for every notebook whose test_notebook_runs is selected."""
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    selected = [
        item.callspec.params["path"]
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_notebook_runs" and hasattr(item, "callspec")
    ]

    async def run_all():
        return await asyncio.gather(*(execute(path) for path in selected), return_exceptions=True)

    return dict(zip(selected, asyncio.run(run_all())))


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_notebook_runs(path, executed):
    outcome = executed[path]
    if outcome is not None:
        raise outcome
