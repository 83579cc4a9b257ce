"""Averaging a generator's last snapshots (``pona_model.weight_average``) and releasing the average
(``python -m pona_model.release --average-snapshots``): hand-computed means, refusals in one line, and
a release whose weights are the average, not the checkpoint's."""

from __future__ import annotations

import pytest
import torch

from pona_model.evaluation.six_poses import footer_line
from pona_model.inference import load_generator
from pona_model.release import main as release_main
from pona_model.release import make_release
from pona_model.weight_average import average_states, snapshot_iteration
from runtime.errors import CheckpointError
from runtime.releases import verify_release
from tests.test_release_generator import checkpoint  # noqa: F401  (the tiny trained checkpoint fixture)


def test_the_average_is_the_mean_of_floats_and_the_last_of_counters():
    a = {"w": torch.tensor([1.0, 2.0]), "bn.running_var": torch.tensor([4.0]), "bn.num_batches_tracked": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 6.0]), "bn.running_var": torch.tensor([0.0]), "bn.num_batches_tracked": torch.tensor(9)}
    c = {"w": torch.tensor([2.0, 1.0]).half(), "bn.running_var": torch.tensor([2.0]),
         "bn.num_batches_tracked": torch.tensor(12)}
    out = average_states([a, b, c])
    assert torch.equal(out["w"], torch.tensor([2.0, 3.0])) and out["w"].dtype == torch.float32
    assert torch.equal(out["bn.running_var"], torch.tensor([2.0]))
    assert out["bn.num_batches_tracked"].item() == 12 and out["bn.num_batches_tracked"].dtype == torch.int64


def test_weights_of_another_model_are_refused_naming_the_file():
    a = {"w": torch.zeros(2)}
    with pytest.raises(CheckpointError, match=r"^snap_b: 'w' has shape \(3,\)"):
        average_states([{"w": torch.zeros(3)}, a], ["snap_b", "snap_c"])
    with pytest.raises(CheckpointError, match=r"^snap_b: its tensors differ.*extra \['v'\]"):
        average_states([{"w": torch.zeros(2), "v": torch.zeros(1)}, a], ["snap_b", "snap_c"])
    assert snapshot_iteration("x/generator_0018500.pt") == 18500
    with pytest.raises(ValueError, match="not a generator snapshot"):
        snapshot_iteration("x/checkpoint.pt")


def _snapshots(checkpoint, folder, shifts: dict[int, float]):  # noqa: F811
    """fp16 snapshots named by iteration: the checkpoint's generator with every float shifted."""
    trained = torch.load(checkpoint, weights_only=True)["generator"]
    folder.mkdir()
    paths = []
    for iteration, shift in shifts.items():
        state = {k: (v + shift).half() if v.is_floating_point() else v for k, v in trained.items()}
        paths.append(folder / f"generator_{iteration:07d}.pt")
        torch.save(state, paths[-1])
    return trained, paths


def test_a_release_of_snapshots_holds_their_average(checkpoint, tmp_path):  # noqa: F811
    trained, paths = _snapshots(checkpoint, tmp_path / "snapshots", {1: 0.25, 2: 0.75})
    release = make_release(checkpoint, "avg", tmp_path / "releases", average_snapshots=[paths[1], paths[0]])
    state = torch.load(release.path, weights_only=True)
    for key, value in trained.items():
        if value.is_floating_point():  # mean of (w + 0.25) and (w + 0.75), each rounded to fp16, then fp16
            torch.testing.assert_close(state["generator"][key].float(), value + 0.5, atol=2e-3, rtol=2e-3)
        else:
            assert torch.equal(state["generator"][key], value)
    assert state["averaged_iterations"] == [1, 2]
    m = verify_release("avg", tmp_path / "releases").manifest
    assert [s["iteration"] for s in m["averaged_snapshots"]] == [1, 2] and "metrics" not in m
    plain = torch.load(make_release(checkpoint, "plain", tmp_path / "releases").path, weights_only=True)
    key = next(k for k, v in trained.items() if v.is_floating_point())
    assert not torch.allclose(plain["generator"][key].float(), state["generator"][key].float())


def test_a_loaded_average_says_which_snapshots_its_weights_are(checkpoint, tmp_path):  # noqa: F811
    """The release keeps its training's last iteration; captions and provenance must name the snapshots."""
    _, paths = _snapshots(checkpoint, tmp_path / "snapshots", {1: 0.25, 2: 0.75})
    make_release(checkpoint, "avg", tmp_path / "releases", average_snapshots=paths)
    make_release(checkpoint, "plain", tmp_path / "releases")
    averaged = load_generator("released:avg", "cpu", releases_root=tmp_path / "releases")
    plain = load_generator("released:plain", "cpu", releases_root=tmp_path / "releases")
    assert averaged.iteration == plain.iteration == 2
    assert averaged.weights == "average of iterations 1-2 (2 snapshots)" and plain.weights == "iteration 2"
    assert "average of iterations 1-2 (2 snapshots)" in footer_line(averaged)
    assert "iteration 2, sha256" in footer_line(plain)


def test_a_snapshot_past_the_checkpoint_is_refused_before_any_release(checkpoint, tmp_path, capsys):  # noqa: F811
    _, paths = _snapshots(checkpoint, tmp_path / "snapshots", {2: 0.0, 3: 0.0})
    code = release_main(["--checkpoint", str(checkpoint), "--name", "late", "--root", str(tmp_path / "releases"),
                         "--average-snapshots", *map(str, paths)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "generator_0000003.pt is past the checkpoint's iteration 2" in err[0]
    assert not (tmp_path / "releases" / "late").exists()
