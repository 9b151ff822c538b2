"""Typed experiment configs from plain data: :func:`load` a JSON or TOML file, :func:`merge` it into a preset.

A config is a frozen dataclass whose fields carry type hints and whose ``__post_init__`` checks
ranges. :func:`from_dict` builds one from a parsed dict, checking every key and value against the
hints first, and :func:`to_dict` turns one back into plain data (tuples as lists, nested dataclasses
as dicts), so ``from_dict(type(c), to_dict(c)) == c``. Files are parsed (``json``/``tomllib``),
never evaluated.

Every error names the dotted key path where it happened:

* an unknown key: :class:`ValueError` listing the valid keys at that level;
* a value of the wrong type: :class:`TypeError` with the expected type and the value given;
* an out-of-range value: the dataclass's own ``ValueError``, its message prefixed by the key path.

Supported hints: ``int``, ``float`` (an int is accepted and converted), ``str``, ``bool`` (an int is
not a bool, and a bool is not an int), ``X | None``, ``Literal[...]``, ``tuple[X, ...]``,
``tuple[X, Y]``, ``list[X]``, ``dict[K, V]``, nested dataclasses; any other hint (``Any``, a
callable) takes the value as given. TOML has no null: leave a key out to keep its default, or use
JSON's ``null`` to set an optional field to ``None``.

Example:
    >>> from rnnlab import config, protocols
    >>> settings = config.from_dict(protocols.TrainSettings, {"steps": 200, "optimizer": {"learning_rate": 1}})
    >>> settings.steps, settings.optimizer.learning_rate, settings.seeds
    (200, 1.0, 5)
    >>> config.from_dict(type(settings), config.to_dict(settings)) == settings
    True
    >>> config.merge(settings, {"optimizer": {"lerning_rate": 0.1}})
    Traceback (most recent call last):
    ...
    ValueError: TrainSettings: unknown key 'optimizer.lerning_rate' (did you mean 'learning_rate'?);
        valid keys of optimizer: ['clip', 'clip_value', ..., 'weight_decay']
    >>> config.merge(settings, {"patience": "10"})
    Traceback (most recent call last):
    ...
    TypeError: TrainSettings: patience must be int | None; got '10' (str)
    >>> config.merge(settings, {"optimizer": {"learning_rate": -1}})
    Traceback (most recent call last):
    ...
    ValueError: TrainSettings: optimizer: OptimizerConfig: learning_rate must be a finite number > 0; got -1.0
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
import pathlib
import tomllib
import types
import typing
from typing import Any

__all__ = ["from_dict", "load", "merge", "to_dict"]

SUFFIXES = (".json", ".toml")


def from_dict(cls, data, *, where: str | None = None):
    """Builds the dataclass ``cls`` from the plain dict ``data``, checking every key and value.

    Nested dataclass fields are built from nested dicts; missing keys take the dataclass's defaults.

    Args:
        cls: a dataclass type (frozen or not).
        data: a dict of field name -> value, e.g. parsed JSON or TOML.
        where: what every error message starts with, e.g. the file the dict was read from;
            default ``cls.__name__``.

    Returns:
        ``cls(**fields)`` with each value converted to its field's type (lists to tuples, ints to floats).

    Raises:
        ValueError: an unknown or missing key (the message lists the valid ones), or an
            out-of-range value (the dataclass's own message, prefixed by the key path).
        TypeError: a value whose type does not match its field's hint, or ``cls`` is not a dataclass.

    Example:
        >>> import dataclasses
        >>> from rnnlab import config
        >>> @dataclasses.dataclass(frozen=True)
        ... class Point:
        ...     x: int
        ...     y: int = 0
        >>> config.from_dict(Point, {"x": 1})
        Point(x=1, y=0)
        >>> config.from_dict(Point, {"x": True}, where="point.json")
        Traceback (most recent call last):
        ...
        TypeError: point.json: x must be int; got True (bool)
        >>> config.from_dict(Point, {"y": 1})
        Traceback (most recent call last):
        ...
        ValueError: Point: missing key 'x' (it has no default); required keys: ['x']
    """
    _check_dataclass_type("from_dict", cls)
    where = cls.__name__ if where is None else where
    return _build(cls, data, (), where)


def merge(config, overrides, *, where: str | None = None):
    """``config`` with ``overrides`` applied field by field, checked as :func:`from_dict` checks.

    A nested dict merges into a nested dataclass field (keys it leaves out keep their values);
    any other value replaces the field (a dict-valued field such as ``lengths`` is replaced whole).

    Args:
        config: a dataclass instance, e.g. an experiment preset.
        overrides: a dict of field name -> new value (e.g. from :func:`load`).
        where: what every error message starts with; default ``type(config).__name__``.

    Returns:
        A new instance of ``type(config)``; ``config`` itself is unchanged.

    Raises:
        ValueError, TypeError: as :func:`from_dict`.

    Example:
        >>> from rnnlab import config, protocols
        >>> settings = config.merge(protocols.TrainSettings(), {"steps": 50, "optimizer": {"name": "sgd"}})
        >>> settings.steps, settings.optimizer.name, settings.optimizer.learning_rate
        (50, 'sgd', 0.01)
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"merge: config must be a dataclass instance; got {type(config).__name__}")
    where = type(config).__name__ if where is None else where
    return _merge(config, overrides, (), where)


def to_dict(config) -> dict:
    """Plain data for the dataclass ``config``: nested dataclasses as dicts, tuples as lists.

    The result is what ``json.dumps`` writes, and :func:`from_dict` reads it back:
    ``from_dict(type(c), to_dict(c)) == c``.

    Example:
        >>> from rnnlab import config, train
        >>> d = config.to_dict(train.OptimizerConfig("sgd", learning_rate=0.1))
        >>> d["name"], d["learning_rate"], d["clip"]
        ('sgd', 0.1, 'global_norm')
        >>> config.from_dict(train.OptimizerConfig, d) == train.OptimizerConfig("sgd", learning_rate=0.1)
        True
    """
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"to_dict: config must be a dataclass instance; got {type(config).__name__}")
    return _plain(config)


def load(path) -> dict:
    """Parses the ``.json`` or ``.toml`` file ``path`` into a dict (parsed, never evaluated).

    Args:
        path: a ``str`` or :class:`pathlib.Path` ending in ``.json`` or ``.toml``.

    Returns:
        The file's top-level table as a dict.

    Raises:
        ValueError: another suffix, a syntax error (the message names the file, the line and
            the column), a key given twice in a JSON object, or a top level that is not a table.
        OSError: the file cannot be read.

    Example:
        >>> import pathlib, tempfile
        >>> from rnnlab import config
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "run.toml").write_text('seed = 3\\n[train.optimizer]\\nlearning_rate = 0.01\\n')
        >>> config.load(folder / "run.toml")
        {'seed': 3, 'train': {'optimizer': {'learning_rate': 0.01}}}
        >>> _ = (folder / "run.json").write_text('{"seed": 3,\\n "train": }')
        >>> config.load(folder / "run.json")
        Traceback (most recent call last):
        ...
        ValueError: .../run.json: not valid JSON: Expecting value (line 2, column 11)
    """
    path = pathlib.Path(path)
    if path.suffix not in SUFFIXES:
        raise ValueError(f"load: path must end in one of {list(SUFFIXES)}; got {str(path)!r}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:  # its message ends with "(at line L, column C)"
            raise ValueError(f"{path}: not valid TOML: {e}") from None
    else:
        try:
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
        except _DuplicateKey as e:
            raise ValueError(f"{path}: key {e.args[0]!r} is given twice in one JSON object") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the top level must be a table of keys; got {type(data).__name__}")
    return data


# -- implementation -----------------------------------------------------------------------------


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _check_dataclass_type(fn: str, cls) -> None:
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"{fn}: cls must be a dataclass type; got {cls!r}")


def _dotted(path: tuple) -> str:
    """``("train", "optimizer", "clip")`` -> ``train.optimizer.clip``; ints index: ``lengths.adding[1]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _fields(cls) -> dict[str, tuple[dataclasses.Field, Any]]:
    """``{name: (field, resolved type hint)}`` of the init fields of ``cls``."""
    try:
        hints = typing.get_type_hints(cls)
    except NameError as e:  # a string annotation naming something the class's module does not define
        raise TypeError(f"from_dict: cannot resolve the type hints of {cls.__qualname__}: {e}") from None
    return {f.name: (f, hints.get(f.name, Any)) for f in dataclasses.fields(cls) if f.init}


def _check_keys(cls, data, path: tuple, where: str, known) -> None:
    if not isinstance(data, dict):
        at = _dotted(path) or "the top level"
        raise TypeError(
            f"{where}: {at} must be a table (dict) of {cls.__name__} fields; got {data!r} ({type(data).__name__})"
        )
    for key in data:
        if not isinstance(key, str):
            at = _dotted(path) or "the top level"
            raise TypeError(
                f"{where}: the keys of {at} must be str field names; got {key!r} ({type(key).__name__}); "
                f"valid keys: {sorted(known)}"
            )
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            said = f" (did you mean {hint[0]!r}?)" if hint else ""
            level = f" of {_dotted(path)}" if path else ""
            raise ValueError(
                f"{where}: unknown key {_dotted((*path, key))!r}{said}; valid keys{level}: {sorted(known)}"
            )


def _construct(cls, kwargs: dict, path: tuple, where: str, *, base=None):
    """``cls(**kwargs)`` (or ``replace(base, **kwargs)``), its own checks re-raised with the key path."""
    try:
        return cls(**kwargs) if base is None else dataclasses.replace(base, **kwargs)
    except (ValueError, TypeError) as e:
        prefix = f"{where}: {_dotted(path)}: " if path else f"{where}: "
        if str(e).startswith(prefix):  # the class already names itself: "Config: Config: ..." says nothing more
            raise
        raise type(e)(f"{prefix}{e}") from e


def _build(cls, data, path: tuple, where: str):
    fields = _fields(cls)
    _check_keys(cls, data, path, where, fields)
    required = sorted(
        name
        for name, (f, _) in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    )
    missing = [name for name in required if name not in data]
    if missing:
        raise ValueError(
            f"{where}: missing key {_dotted((*path, missing[0]))!r} (it has no default); required keys: {required}"
        )
    kwargs = {key: _convert(fields[key][1], value, (*path, key), where) for key, value in data.items()}
    return _construct(cls, kwargs, path, where)


def _merge(config, overrides, path: tuple, where: str):
    cls = type(config)
    fields = _fields(cls)
    _check_keys(cls, overrides, path, where, fields)
    changes = {}
    for key, value in overrides.items():
        hint, current = fields[key][1], getattr(config, key)
        if isinstance(value, dict) and dataclasses.is_dataclass(current) and _dataclass_in(hint):
            changes[key] = _merge(current, value, (*path, key), where)
        else:
            changes[key] = _convert(hint, value, (*path, key), where)
    return _construct(cls, changes, path, where, base=config)


def _dataclass_in(hint) -> bool:
    """Whether ``hint`` is a dataclass type or an optional one."""
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    return any(isinstance(h, type) and dataclasses.is_dataclass(h) for h in options)


def _is_union(hint) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _name(hint) -> str:
    """A readable name of a type hint: ``int``, ``tuple[int, ...]``, ``str | None``."""
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _wrong(hint, value, path: tuple, where: str) -> TypeError:
    return TypeError(f"{where}: {_dotted(path)} must be {_name(hint)}; got {value!r} ({type(value).__name__})")


def _convert(hint, value, path: tuple, where: str, shown=None):
    """``value`` checked against ``hint`` and converted (lists to tuples, ints to floats, dicts to dataclasses).

    ``shown`` is the hint a type error at this level names (``int | None`` rather than ``int``).
    """
    if shown is not None:
        try:
            return _convert(hint, value, path, where)
        except TypeError as e:
            if str(e).startswith(f"{where}: {_dotted(path)} must be {_name(hint)};"):
                raise _wrong(shown, value, path, where) from None
            raise
    if hint is Any or isinstance(hint, typing.TypeVar):
        return value
    if hint is type(None):
        if value is not None:
            raise _wrong(hint, value, path, where)
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(hint):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # X | None: an error inside X (an item of a tuple) keeps its own path
            return _convert(options[0], value, path, where, shown=hint)
        for option in options:
            try:
                return _convert(option, value, path, where)
            except TypeError:
                pass
        raise _wrong(hint, value, path, where)
    if origin is typing.Literal:
        if not any(value == a and type(value) is type(a) for a in args):
            raise ValueError(f"{where}: {_dotted(path)} must be one of {list(args)}; got {value!r}")
        return value
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise _wrong(hint, value, path, where)
        return _build(hint, value, path, where)
    if hint is bool:
        if not isinstance(value, bool):
            raise _wrong(hint, value, path, where)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise _wrong(hint, value, path, where)
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise _wrong(hint, value, path, where)
        try:
            return float(value)
        except OverflowError:
            raise ValueError(
                f"{where}: {_dotted(path)} must be a float; got an int of {int(value).bit_length()} bits, "
                "beyond the float range"
            ) from None
    if hint is str:
        if not isinstance(value, str):
            raise _wrong(hint, value, path, where)
        return value
    if hint in (tuple, list) or origin in (tuple, list):
        return _sequence(hint, origin or hint, args, value, path, where)
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _wrong(hint, value, path, where)
        if not args:
            return dict(value)
        k_hint, v_hint = args
        out = {}
        for k, v in value.items():
            if k_hint is str and not isinstance(k, str):
                raise TypeError(f"{where}: the keys of {_dotted(path)} must be str; got {k!r} ({type(k).__name__})")
            out[k] = _convert(v_hint, v, (*path, k), where)
        return out
    return value  # a hint this module does not check (a callable, a class): taken as given


def _sequence(hint, origin, args, value, path: tuple, where: str):
    if not isinstance(value, (list, tuple)):
        raise _wrong(hint, value, path, where)
    if not args:
        items = list(value)
    elif origin is list:
        items = [_convert(args[0], v, (*path, i), where) for i, v in enumerate(value)]
    elif len(args) == 2 and args[1] is Ellipsis:
        items = [_convert(args[0], v, (*path, i), where) for i, v in enumerate(value)]
    elif args == ((),):  # tuple[()]: the empty tuple
        if value:
            raise _wrong(hint, value, path, where)
        items = []
    else:
        if len(value) != len(args):
            raise TypeError(
                f"{where}: {_dotted(path)} must be {_name(hint)} ({len(args)} items); "
                f"got {len(value)} items: {list(value)!r}"
            )
        items = [_convert(a, v, (*path, i), where) for i, (a, v) in enumerate(zip(args, value))]
    return items if origin is list else tuple(items)


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
