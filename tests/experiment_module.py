"""Loads a script from ``experiments/`` as a module, for the tests of that experiment."""

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load(name: str):
    """The module ``experiments/<name>.py``, registered under ``name`` (dataclasses look their module up by name)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
