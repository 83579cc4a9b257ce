"""The key=value convention shared by every entry point, and the summary command."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from pona_model.summary import main as summary_main
from pona_model.train_config import PRESETS_DIR, TrainConfig
from runtime.config import param, parse_config, resolve, to_dict
from runtime.errors import ConfigError


@dataclass
class Inner:
    n: int = param(3, "a count")
    size: tuple[int, int] = param((128, 64), "a size")
    rate: float = param(2e-4, "a rate")


@dataclass
class Outer:
    inner: Inner = param(default_factory=Inner, help="group")
    mode: str = param("a", "a mode", choices=["a", "b"])
    name: str | None = param(None, "optional")
    flag: bool = param(False, "a flag")
    names: list[str] = param(default_factory=lambda: ["x", "y"], help="a list")


def test_a_list_key_takes_one_bare_item_but_a_fixed_size_tuple_does_not():
    assert resolve(Outer, ["names=none"]).names == ["none"]  # methods=none, as a user types it
    assert resolve(Outer, ["names=a,b"]).names == ["a", "b"]
    assert resolve(Outer, ["names=[a]"]).names == ["a"]
    with pytest.raises(ConfigError, match=r"inner\.size: expected a list"):
        resolve(Outer, ["inner.size=64"])


def test_overrides_are_typed_and_nested():
    cfg = resolve(Outer, ["inner.n=2", "inner.size=[64,32]", "inner.rate=1e-3", "name=x", "flag=true"])
    assert cfg == Outer(Inner(2, (64, 32), 1e-3), "a", "x", True, ["x", "y"])
    assert resolve(Outer, ["inner.size=64,32"]).inner.size == (64, 32)
    assert resolve(Outer, ["name=null"]).name is None


@pytest.mark.parametrize("arg, message", [
    ("inner.m=1", "unknown key 'inner.m'; known keys here: n, rate, size"),
    ("inner.n=a", "inner.n: expected an integer, got 'a'"),
    ("inner.n=1.5", "inner.n: expected an integer, got 1.5"),
    ("flag=3", "flag: expected true or false, got 3"),
    ("mode=c", "mode: 'c' is not one of ['a', 'b']"),
    ("inner=1", "inner: is a group of settings"),
    ("inner.size=[1,2,3]", "inner.size: expected 2 values"),
    ("bare", "argument 'bare' is not key=value"),
    ("preset=nope", "unknown preset 'nope'"),
])
def test_bad_keys_and_values_name_the_key(arg, message):
    with pytest.raises(ConfigError) as err:
        resolve(Outer, [arg])
    assert message in str(err.value)


def test_order_is_defaults_preset_file_overrides(tmp_path):
    user = tmp_path / "user.yaml"
    user.write_text("generator: {n_blocks: 1}\nschedule: {batch_size: 4}\n")
    cfg = resolve(TrainConfig, ["preset=market1501", f"config={user}", "schedule.batch_size=8"], PRESETS_DIR)
    assert (cfg.generator.n_blocks, cfg.generator.ngf, cfg.schedule.batch_size) == (1, 64, 8)
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        resolve(TrainConfig, [f"config={tmp_path / 'list.yaml'}"], PRESETS_DIR)


@dataclass
class Run:
    """A config holding another command's config as a group that takes that command's presets."""

    train: TrainConfig = param(default_factory=TrainConfig, help="training", presets=PRESETS_DIR,
                               not_from_preset=("out", "data"))
    inner: Inner = param(default_factory=Inner, help="a group without presets")


def test_a_group_takes_its_commands_presets_under_the_keys_given_for_it(tmp_path):
    synth = resolve(TrainConfig, ["preset=synth"], PRESETS_DIR)
    run = resolve(Run, ["train.preset=synth"])
    # the preset's values, but not the keys the outer config sets itself (out and data: the defaults)
    assert to_dict(run.train) == {**to_dict(synth), "out": TrainConfig().out, "data": to_dict(TrainConfig().data)}
    # keys given beside the preset (here in a config file, then on the command line) win over it
    user = tmp_path / "run.yaml"
    user.write_text("train: {preset: synth, schedule: {n_epochs: 3}, generator: {ngf: 8}}\n")
    run = resolve(Run, [f"config={user}", "train.generator.ngf=4"])
    assert (run.train.schedule.n_epochs, run.train.generator.ngf) == (3, 4)
    assert (run.train.schedule.lr, run.train.generator.pose_sigma) == (synth.schedule.lr, synth.generator.pose_sigma)
    # another preset on the command line replaces the file's
    assert resolve(Run, [f"config={user}", "train.preset=market1501"]).train.generator.image_size == (128, 64)
    with pytest.raises(ConfigError, match=r"train\.preset: unknown preset 'nope'; available presets: deepfashion"):
        resolve(Run, ["train.preset=nope"])
    with pytest.raises(ConfigError, match=r"inner\.preset: the group inner takes no presets"):
        resolve(Run, ["inner.preset=synth"])


def test_model_config_validation_is_reported_with_its_group():
    with pytest.raises(ConfigError, match=r"generator: .*n_blocks"):
        resolve(TrainConfig, ["generator.n_blocks=7"], PRESETS_DIR)


def test_help_lists_every_key_with_default_and_meaning(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_config(TrainConfig, ["--help"], prog="prog", presets_dir=PRESETS_DIR)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "presets: deepfashion, market1501, patn-deepfashion, patn-market1501, patn-synth, synth" in text
    assert "generator.n_blocks=3  number of cascaded blocks (pona: 1..5" in text
    assert "loss.vgg_missing=error" in text and "(one of: error, disable)" in text


def test_errors_exit_2_with_one_line_and_print_config_round_trips(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_config(TrainConfig, ["generator.nblocks=2"], prog="prog", presets_dir=PRESETS_DIR)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().startswith("prog: error: unknown key 'generator.nblocks'")
    with pytest.raises(SystemExit):
        parse_config(TrainConfig, ["preset=synth", "--print-config"], prog="prog", presets_dir=PRESETS_DIR)
    import yaml
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed == to_dict(resolve(TrainConfig, ["preset=synth"], PRESETS_DIR))


def test_summary_json_pins_table_ii(capsys):
    assert summary_main(["preset=market1501", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["generator_params"] == 34_330_444
    assert (s["d_pose_params"], s["d_appearance_params"]) == (3_977_408, 3_930_368)
    assert s["generator_gflops"] == pytest.approx(39.2, rel=0.01)
    assert summary_main(["preset=market1501", "generator.n_blocks=2", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["generator_params"] == 23_300_233 and s["generator_gflops"] == pytest.approx(27.5, rel=0.01)
    assert summary_main(["preset=deepfashion", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["generator_params"] == 34_329_356
