"""Typed configs from plain data: round trips over every preset, and errors that name the key."""

import dataclasses
import json
import re
from typing import Literal

import pytest
from experiment_module import ROOT, load

from rnnlab import cli, config, protocols
from rnnlab.train import OptimizerConfig

# Every experiment script with presets (a helper script under experiments/ may have none).
EXPERIMENTS = sorted(p.stem for p in (ROOT / "experiments").glob("*.py") if "\nPRESETS = " in p.read_text())
OPTIMIZER_KEYS = re.escape(str(sorted(f.name for f in dataclasses.fields(OptimizerConfig))))


@dataclasses.dataclass(frozen=True)
class _Inner:
    rate: float = 0.5
    mode: Literal["a", "b"] = "a"

    def __post_init__(self):
        if not 0 < self.rate < 1:
            raise ValueError(f"_Inner: rate must be in (0, 1); got {self.rate}")


@dataclasses.dataclass(frozen=True)
class _Outer:
    name: str
    flag: bool = False
    count: int = 1
    sizes: tuple[int, ...] = (1, 2)
    pair: tuple[float, float] = (0.0, 1.0)
    lengths: dict[str, tuple[int, ...]] = dataclasses.field(default_factory=lambda: {"a": (1,)})
    limit: int | None = None
    inner: _Inner = _Inner()


def test_the_experiments_with_presets_are_found():
    assert {"vanishing_gradient", "char_lm", "seq_digits", "forecast"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_preset_round_trips_through_json(name):
    module = load(name)
    for preset in module.PRESETS.values():
        data = json.loads(json.dumps(config.to_dict(preset)))
        assert config.from_dict(type(preset), data) == preset
        assert config.merge(preset, data) == preset
        assert config.merge(preset, {}) == preset


def test_values_are_converted_to_their_field_types():
    built = config.from_dict(
        _Outer, {"name": "x", "sizes": [3, 4], "pair": [1, 2], "lengths": {"b": [5]}, "inner": {"rate": 0.25}}
    )
    assert built == _Outer("x", sizes=(3, 4), pair=(1.0, 2.0), lengths={"b": (5,)}, inner=_Inner(0.25))
    assert isinstance(built.pair[0], float) and isinstance(built.sizes, tuple)
    assert config.to_dict(built)["lengths"] == {"b": [5]}


@pytest.mark.parametrize(
    "data, path, keys",
    [
        ({"name": "x", "nmae": "y"}, "nmae", "['count', 'flag', 'inner', 'lengths', 'limit', 'name', 'pair', 'sizes']"),
        ({"name": "x", "inner": {"rat": 0.1}}, "inner.rat", "valid keys of inner: ['mode', 'rate']"),
    ],
)
def test_an_unknown_key_is_named_with_the_valid_ones(data, path, keys):
    with pytest.raises(ValueError, match=rf"unknown key '{re.escape(path)}'.*{re.escape(keys)}"):
        config.from_dict(_Outer, data)


def test_a_typo_in_a_nested_preset_key_suggests_the_field():
    preset = load("vanishing_gradient").PRESETS["tiny"]
    with pytest.raises(ValueError) as info:
        config.merge(preset, {"train": {"optimizer": {"lerning_rate": 0.1}}})
    message = str(info.value)
    assert "unknown key 'train.optimizer.lerning_rate' (did you mean 'learning_rate'?)" in message
    assert re.search(rf"valid keys of train.optimizer: {OPTIMIZER_KEYS}", message)


@pytest.mark.parametrize(
    "data, pattern",
    [
        ({"count": "3"}, r"count must be int; got '3' \(str\)"),
        ({"count": True}, r"count must be int; got True \(bool\)"),
        ({"count": 2.0}, r"count must be int; got 2.0 \(float\)"),
        ({"flag": 1}, r"flag must be bool; got 1 \(int\)"),
        ({"name": 3}, r"name must be str; got 3 \(int\)"),
        ({"sizes": [1, "2"]}, r"sizes\[1\] must be int; got '2' \(str\)"),
        ({"sizes": 3}, r"sizes must be tuple\[int, \.\.\.\]; got 3 \(int\)"),
        ({"pair": [1.0]}, r"pair must be tuple\[float, float\] \(2 items\); got 1 items"),
        ({"lengths": {"a": [1, None]}}, r"lengths.a\[1\] must be int; got None \(NoneType\)"),
        ({"lengths": [1]}, r"lengths must be dict\[str, tuple\[int, \.\.\.\]\]; got \[1\]"),
        ({"limit": "5"}, r"limit must be int \| None; got '5' \(str\)"),
        ({"inner": 0.5}, r"inner must be _Inner; got 0.5 \(float\)"),
        ({"inner": {"rate": "0.1"}}, r"inner.rate must be float; got '0.1' \(str\)"),
    ],
)
def test_a_wrong_type_names_the_key_the_type_and_the_value(data, pattern):
    with pytest.raises(TypeError, match=rf"^_Outer: {pattern}"):
        config.from_dict(_Outer, {"name": "x", **data})


def test_an_out_of_range_value_keeps_the_dataclass_message_behind_the_key_path():
    with pytest.raises(ValueError, match=r"^f.json: inner: _Inner: rate must be in \(0, 1\); got 2.0$"):
        config.from_dict(_Outer, {"name": "x", "inner": {"rate": 2}}, where="f.json")
    with pytest.raises(ValueError, match=r"inner.mode must be one of \['a', 'b'\]; got 'c'"):
        config.from_dict(_Outer, {"name": "x", "inner": {"mode": "c"}})
    with pytest.raises(ValueError, match=r"^TrainSettings: optimizer: OptimizerConfig: momentum must be in \[0, 1\)"):
        config.from_dict(protocols.TrainSettings, {"optimizer": {"momentum": 1}})
    with pytest.raises(ValueError, match=r"^TrainSettings: grad_size must be <= eval_size"):
        config.merge(protocols.TrainSettings(), {"grad_size": 10_000})


def test_missing_keys_take_defaults_and_a_required_one_is_named():
    assert config.from_dict(_Outer, {"name": "x"}) == _Outer("x")
    with pytest.raises(ValueError, match=r"missing key 'name' \(it has no default\); required keys: \['name'\]"):
        config.from_dict(_Outer, {})
    with pytest.raises(TypeError, match=r"the top level must be a table .* got \[1\]"):
        config.from_dict(_Outer, [1])
    with pytest.raises(TypeError, match=r"cls must be a dataclass type"):
        config.from_dict(dict, {})


def test_merge_changes_only_the_given_fields():
    base = _Outer("x", lengths={"a": (1,), "b": (2,)}, limit=4)
    merged = config.merge(base, {"inner": {"mode": "b"}, "lengths": {"c": [3]}, "limit": None})
    assert merged == _Outer("x", lengths={"c": (3,)}, inner=_Inner(0.5, "b"))
    assert base.limit == 4  # the preset itself is unchanged


def test_load_parses_toml_and_json(tmp_path):
    (tmp_path / "a.toml").write_text('name = "x"\nsizes = [3]\n[inner]\nrate = 0.1\n')
    (tmp_path / "a.json").write_text('{"name": "x", "sizes": [3], "inner": {"rate": 0.1}}')
    want = _Outer("x", sizes=(3,), inner=_Inner(0.1))
    for name in ("a.toml", "a.json"):
        assert config.from_dict(_Outer, config.load(tmp_path / name)) == want


@pytest.mark.parametrize(
    "name, text, pattern",
    [
        ("c.yaml", "name: x", r"path must end in one of \['.json', '.toml'\]; got '.*c.yaml'"),
        ("c.toml", 'name = "x"\n[inner\n', r"c.toml: not valid TOML: .*line 2"),
        ("c.json", '{"name": "x",\n}', r"c.json: not valid JSON: .*\(line 2, column 1\)"),
        ("c.json", '{"name": "x", "name": "y"}', r"c.json: key 'name' is given twice"),
        ("c.json", "[1, 2]", r"c.json: the top level must be a table of keys; got list"),
    ],
)
def test_load_errors_name_the_file_and_the_line(tmp_path, name, text, pattern):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=pattern):
        config.load(tmp_path / name)


def test_config_option_through_an_experiment_main_exits_with_the_message(tmp_path, capsys):
    bad = tmp_path / "run.toml"
    bad.write_text("[train.optimizer]\nlerning_rate = 0.1\n")
    with pytest.raises(SystemExit) as info:
        load("vanishing_gradient").main(["--preset", "tiny", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: " in err and "unknown key 'train.optimizer.lerning_rate'" in err
    assert re.search(rf"valid keys of train.optimizer: {OPTIMIZER_KEYS}", err)
    assert not (tmp_path / "o").exists()


def test_config_option_applies_before_the_single_options(tmp_path, capsys):
    preset = _CliConfig("demo", 0, protocols.TrainSettings(optimizer=OptimizerConfig("adam", 0.1)))
    (tmp_path / "run.json").write_text('{"seed": 3, "train": {"steps": 7, "optimizer": {"name": "sgd"}}}')
    seen = []

    def run(config, out, progress, resume):
        seen.append(config)
        return {}

    common = dict(description="demo", presets={"quick": preset}, run_experiment=run, findings=None,
                  make_plots=None, report=lambda r: "")  # fmt: skip
    cli.main(["--config", str(tmp_path / "run.json"), "--steps", "9", "--out", str(tmp_path)], **common)
    assert seen[0] == _CliConfig("demo", 3, protocols.TrainSettings(steps=9, optimizer=OptimizerConfig("sgd", 0.1)))
    assert preset.seed == 0
    with pytest.raises(SystemExit):
        cli.main(["--config", str(tmp_path / "missing.toml")], **common)
    assert "--config " in capsys.readouterr().err


@dataclasses.dataclass(frozen=True)
class _CliConfig:
    name: str
    seed: int
    train: protocols.TrainSettings
