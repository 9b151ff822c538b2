"""The experiments' shared command line: presets, overrides that name what they change, --replot."""

import argparse
import dataclasses
import json

import pytest

from rnnlab import cli, protocols
from rnnlab.train import OptimizerConfig


@dataclasses.dataclass(frozen=True)
class _Config:
    name: str
    seed: int
    train: protocols.TrainSettings
    lengths: dict


_PRESET = _Config("demo", 0, protocols.TrainSettings(optimizer=OptimizerConfig("adam", learning_rate=0.1)), {"a": (5,)})


def _parse(*argv):
    parser = argparse.ArgumentParser()
    cli.add_common_arguments(parser, ["quick"])
    return parser, parser.parse_args(argv)


def test_overrides_replace_only_what_is_given():
    parser, args = _parse("--seeds", "3", "--lr", "0.5", "--seed", "7", "--lengths", "a=10,20")
    config = cli.apply_common_arguments(_PRESET, args, parser)
    assert (config.train.seeds, config.seed, config.lengths) == (3, 7, {"a": (10, 20)})
    assert config.train.optimizer == OptimizerConfig("adam", learning_rate=0.5)
    assert config.train.steps == _PRESET.train.steps
    parser, args = _parse("--optimizer", "rmsprop")
    assert cli.apply_common_arguments(_PRESET, args, parser).train.optimizer.learning_rate == 0.1
    parser, args = _parse("--matmul-dtype", "bfloat16")
    assert cli.apply_common_arguments(_PRESET, args, parser).train.matmul_dtype == "bfloat16"
    assert _PRESET.train.matmul_dtype is None


def test_an_override_the_experiment_has_no_field_for_is_an_error(capsys):
    parser, args = _parse("--hidden", "8")
    with pytest.raises(SystemExit):
        cli.apply_common_arguments(_PRESET, args, parser)
    assert "--hidden: this experiment has no hidden_size to override" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (("--steps", "0"), "TrainSettings: steps must be a positive int; got 0"),
        (("--lr", "-1"), "OptimizerConfig: learning_rate must be a finite number > 0; got -1.0"),
    ],
)
def test_a_value_the_config_refuses_exits_with_its_message(capsys, argv, message):
    parser, args = _parse(*argv)
    with pytest.raises(SystemExit):
        cli.apply_common_arguments(_PRESET, args, parser)
    assert message in capsys.readouterr().err


@dataclasses.dataclass(frozen=True)
class _Settings:
    steps: int = 10


@dataclasses.dataclass(frozen=True)
class _SeedsOutside:
    name: str
    seed: int
    seeds: int
    train: _Settings


def test_seeds_go_to_the_config_when_the_training_settings_have_none(capsys):
    preset = _SeedsOutside("demo", 0, 1, _Settings())
    parser, args = _parse("--seeds", "4", "--steps", "7")
    config = cli.apply_common_arguments(preset, args, parser)
    assert (config.seeds, config.train.steps) == (4, 7)
    parser, args = _parse("--batch-size", "8")
    with pytest.raises(SystemExit):
        cli.apply_common_arguments(preset, args, parser)
    assert "--batch-size: this experiment has no batch_size to override" in capsys.readouterr().err
    parser, args = _parse("--matmul-dtype", "bfloat16")
    with pytest.raises(SystemExit):
        cli.apply_common_arguments(preset, args, parser)
    assert "--matmul-dtype: this experiment has no matmul_dtype to override" in capsys.readouterr().err


def test_replot_recomputes_findings_and_redraws(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({"runs": [1, 2]}))
    drawn = []
    results = cli.main(
        ["--replot", "--out", str(tmp_path)], description="demo", presets={"quick": _PRESET},
        run_experiment=None, findings=lambda r: {"count": len(r["runs"])},
        make_plots=lambda r, out: drawn.append(out), report=lambda r: f"count {r['findings']['count']}",
    )  # fmt: skip
    assert results["findings"] == {"count": 2} and drawn == [tmp_path]
    assert (tmp_path / "report.md").read_text() == "count 2"


def test_replot_needs_out(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--replot"], description="demo", presets={"quick": _PRESET}, run_experiment=None,
                 findings=None, make_plots=None, report=None)  # fmt: skip
    assert "--replot needs --out" in capsys.readouterr().err


def _run_main(argv, seen):
    def run(config, out, progress, resume):
        seen.append(resume)
        (out / "results.json").write_text("{}")
        return {}

    return cli.main(argv, description="demo", presets={"quick": _PRESET}, run_experiment=run, findings=None,
                    make_plots=None, report=lambda r: "")  # fmt: skip


def test_a_folder_holding_an_earlier_run_needs_resume_or_overwrite(tmp_path, capsys):
    seen = []
    _run_main(["--out", str(tmp_path)], seen)  # a fresh folder
    (tmp_path / "report.md").write_text("old report")
    with pytest.raises(SystemExit):
        _run_main(["--out", str(tmp_path)], seen)
    err = capsys.readouterr().err
    assert "holds the results of an earlier run (results.json): pass --resume" in err and "--overwrite" in err
    assert seen == [False] and (tmp_path / "results.json").exists()  # refused before running anything

    (tmp_path / "checkpoints" / "point").mkdir(parents=True)
    with pytest.raises(SystemExit):
        _run_main(["--out", str(tmp_path)], seen)
    assert "holds an interrupted run (checkpoints/)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _run_main(["--out", str(tmp_path), "--resume", "--overwrite"], seen)
    assert "pass one of them" in capsys.readouterr().err
    assert seen == [False]

    _run_main(["--out", str(tmp_path), "--resume"], seen)  # continues: the checkpoints stay
    assert seen == [False, True] and (tmp_path / "checkpoints" / "point").exists()
    _run_main(["--out", str(tmp_path), "--overwrite"], seen)  # starts over: results and checkpoints deleted first
    assert seen == [False, True, False] and not (tmp_path / "checkpoints").exists()
    assert (tmp_path / "report.md").read_text() == "old report"  # other files are left for the run to rewrite
