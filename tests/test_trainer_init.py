"""Fine-tuning from a finished generator (``init=``) and training without a GAN term (``loss.lambda_gan=0``)."""

from __future__ import annotations

import json

import pytest
import torch

from pona_model.checkpoint_tags import GENERATOR_FORMAT, GENERATOR_RELEASE_FORMAT
from pona_model.init_weights import read_start
from pona_model.release import make_release
from pona_model.train_config import load_train_config
from pona_model.trainer import Trainer
from runtime.checkpoint import file_sha256, load_checkpoint
from runtime.errors import CheckpointError, ConfigError
from runtime.releases import ReleaseError
from runtime.training import CHECKPOINT_NAME, LOG_NAME
from tests.conftest import TINY_TRAIN


def config(data, out, *extra):
    return load_train_config(*TINY_TRAIN, f"data.root={data}", f"out={out}", *extra)


def same_weights(a: torch.nn.Module, b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, b[k].to(v.dtype)) for k, v in a.state_dict().items())


def test_init_starts_the_networks_from_the_checkpoint_at_iteration_zero(pair_data, trained, tmp_path):
    start = load_checkpoint(trained, GENERATOR_FORMAT)
    trainer = Trainer(config(pair_data, tmp_path / "tune", f"init={trained}"))
    assert not same_weights(trainer.generator, start["generator"])  # built at random first
    trainer.begin()
    assert same_weights(trainer.generator, start["generator"])
    assert same_weights(trainer.d_pose, start["d_pose"]) and same_weights(trainer.d_app, start["d_appearance"])
    assert trainer.iteration == 0 and trainer.opt_g.state == {}  # fresh optimiser, this run's schedule
    trainer.fit(max_iterations=2)
    state = load_checkpoint(tmp_path / "tune" / CHECKPOINT_NAME, GENERATOR_FORMAT)
    assert state["iteration"] == 2
    assert state["init"] == {"spec": str(trained), "sha256": file_sha256(trained), "iteration": 2,
                             "averaged_iterations": []}
    first = json.loads((tmp_path / "tune" / LOG_NAME).read_text().splitlines()[0])
    assert first["event"] == "start" and first["init"]["sha256"] == file_sha256(trained)


def test_without_init_the_run_starts_at_random(pair_data, trained, tmp_path):
    plain = Trainer(config(pair_data, tmp_path / "plain"))
    plain.begin()
    assert plain.init_record is None
    assert not same_weights(plain.generator, load_checkpoint(trained, GENERATOR_FORMAT)["generator"])


def test_a_resumed_fine_tune_continues_from_its_own_checkpoint_not_the_start(pair_data, trained, tmp_path):
    out = tmp_path / "tune"
    Trainer(config(pair_data, out, f"init={trained}")).fit(max_iterations=2)
    saved = load_checkpoint(out / CHECKPOINT_NAME, GENERATOR_FORMAT)
    again = Trainer(config(pair_data, out, f"init={trained}"))
    again.load_state_dict(saved, out / CHECKPOINT_NAME)
    again.begin()  # a run that has started never reloads the start
    assert again.iteration == 2 and same_weights(again.generator, saved["generator"])
    assert again.init_record == saved["init"]


def test_init_from_a_release_is_verified_and_recorded(pair_data, trained, tmp_path, monkeypatch):
    root = tmp_path / "releases"
    release = make_release(trained, "tiny", root)
    monkeypatch.setenv("PONA_RELEASES", str(root))
    trainer = Trainer(config(pair_data, tmp_path / "tune", "init=released:tiny"))
    trainer.begin()
    weights = load_checkpoint(release.path, GENERATOR_RELEASE_FORMAT)["generator"]
    assert same_weights(trainer.generator, {k: v.float() if v.is_floating_point() else v for k, v in weights.items()})
    assert trainer.init_record["sha256"] == release.sha256
    # a release holds no discriminators: they start fresh
    assert not same_weights(trainer.d_pose, load_checkpoint(trained, GENERATOR_FORMAT)["d_pose"])
    with open(release.path, "ab") as f:
        f.write(b"x")
    with pytest.raises(ReleaseError, match="tiny"):  # altered: refused before any model is built
        Trainer(config(pair_data, tmp_path / "tune2", "init=released:tiny"))


def test_a_start_of_another_generator_config_or_no_file_is_refused_in_one_line(pair_data, trained, tmp_path):
    with pytest.raises(ConfigError, match=r"init = .*nope\.pt is not a file"):
        Trainer(config(pair_data, tmp_path / "a", f"init={tmp_path / 'nope.pt'}"))
    wider = Trainer(config(pair_data, tmp_path / "b", f"init={trained}", "generator.ngf=16"))
    with pytest.raises(CheckpointError, match=r"another config \(differs in: generator\.ngf\)"):
        wider.begin()


def test_other_discriminators_start_fresh(pair_data, trained, tmp_path):
    same = config(pair_data, tmp_path / "a", f"init={trained}")
    other = config(pair_data, tmp_path / "b", f"init={trained}", "discriminator.ndf=4")
    assert sorted(read_start(trained, same.generator, same.discriminator, "pona").discriminators) == [
        "d_appearance", "d_pose"]
    assert read_start(trained, other.generator, other.discriminator, "pona").discriminators == {}
    trainer = Trainer(other)
    trainer.begin()  # the generator still comes from the start
    assert same_weights(trainer.generator, load_checkpoint(trained, GENERATOR_FORMAT)["generator"])


def test_lambda_gan_zero_leaves_the_discriminators_alone(pair_data, tmp_path):
    trainer = Trainer(config(pair_data, tmp_path / "l1", "loss.lambda_gan=0"))
    before = {k: v.clone() for k, v in trainer.d_pose.state_dict().items()}
    trainer.fit(max_iterations=3)
    assert same_weights(trainer.d_pose, before)
    records = [json.loads(line) for line in (tmp_path / "l1" / LOG_NAME).read_text().splitlines()]
    steps = [r for r in records if "g_l1" in r]
    assert len(steps) == 3 and all(r["d_pose"] == r["d_appearance"] == r["g_gan_pose"] == 0 for r in steps)
    # with the GAN term on, the same run moves the discriminators
    gan = Trainer(config(pair_data, tmp_path / "gan"))
    before = {k: v.clone() for k, v in gan.d_pose.state_dict().items()}
    gan.fit(max_iterations=3)
    assert not same_weights(gan.d_pose, before)
