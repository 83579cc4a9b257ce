"""Importing and exporting the authors' PoNA / PATN checkpoints: layout, semantics, errors, round trip."""

from __future__ import annotations

import shutil
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from pona_model.authors_checkpoint import LayoutError, to_authors
from pona_model.checkpoint_tags import GENERATOR_FORMAT
from pona_model.export_checkpoint import export
from pona_model.export_checkpoint import main as export_main
from pona_model.import_checkpoint import convert, imported_state, read_state_dict
from pona_model.import_checkpoint import main as import_main
from pona_model.models import build_discriminators, build_generator
from pona_model.train_config import TrainConfig, load_train_config
from pona_model.trainer import Trainer
from runtime.checkpoint import load_checkpoint
from runtime.errors import CheckpointError
from runtime.training import CHECKPOINT_NAME
from tests.conftest import TINY_TRAIN

DATA = Path(__file__).parent / "fixtures"
LISTINGS = {("pona", "market1501"): "market1501", ("pona", "deepfashion"): "deepfashion",
            ("patn", "market1501"): "patn-market1501", ("patn", "deepfashion"): "patn-deepfashion"}


def listing(arch: str, dataset: str) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """The authors' documented generator layout: (key without model., shape, dtype), in their order."""
    rows = []
    for line in (DATA / f"authors_keys_{arch}-{dataset}.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        key, rest = line.split(" ", 1)
        shape, dtype = rest.rsplit(" ", 1)
        rows.append((key, tuple(int(s) for s in shape.strip("()").split(",") if s.strip()), getattr(torch, dtype)))
    return rows


def authors_file(arch: str, dataset: str, shrink: int = 1, seed: int = 0) -> OrderedDict[str, Tensor]:
    """A state dict with the authors' key names, order and shapes, filled with seeded random values
    (nonzero attention gates, positive variances), as their ``save_network`` writes it. ``shrink=8``
    divides every width (multiples of 32) by 8: the same layout at ngf 8, for fast tests."""
    g = torch.Generator().manual_seed(seed)
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, shape, dtype in listing(arch, dataset):
        shape = tuple(d // shrink if d % 32 == 0 else d for d in shape)
        if dtype == torch.int64:
            value = torch.randint(0, 1000, shape, generator=g)
        elif key.endswith("running_var"):
            value = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(("gamma", "beta")):
            value = torch.randn(shape, generator=g) * 0.5
        elif len(shape) == 1 and ".running_mean" not in key and key.rsplit(".", 2)[-2].isdigit() and "weight" in key:
            value = 1 + 0.1 * torch.randn(shape, generator=g)  # batch-norm scale
        else:
            value = torch.randn(shape, generator=g) * 0.03
        out["model." + key] = value
    return out


def config(arch: str, dataset: str, *extra: str) -> TrainConfig:
    return load_train_config(f"preset={LISTINGS[arch, dataset]}", *extra)


def small(arch: str, dataset: str, *extra: str) -> TrainConfig:
    """The preset at ngf 8 and 64 x 32 images (``authors_file(..., shrink=8)`` fits it)."""
    return config(arch, dataset, "generator.ngf=8", "generator.image_size=[64,32]", *extra)


# --------------------------------------------------------------------------- the authors' forward, by name
def _conv(sd: dict, name: str, x: Tensor, **kw) -> Tensor:
    return F.conv2d(x, sd[name + ".weight"], sd.get(name + ".bias"), **kw)


def _norm(sd: dict, name: str, x: Tensor) -> Tensor:
    if name + ".running_mean" in sd:
        return F.batch_norm(x, sd[name + ".running_mean"], sd[name + ".running_var"], sd[name + ".weight"],
                            sd[name + ".bias"], training=False, eps=1e-5)
    return F.instance_norm(x, eps=1e-5)


def _encoder(sd: dict, name: str, x: Tensor) -> Tensor:
    x = F.relu(_norm(sd, f"{name}.2", _conv(sd, f"{name}.1", F.pad(x, (3, 3, 3, 3), mode="reflect"))))
    x = F.relu(_norm(sd, f"{name}.5", _conv(sd, f"{name}.4", x, stride=2, padding=1)))
    return F.relu(_norm(sd, f"{name}.8", _conv(sd, f"{name}.7", x, stride=2, padding=1)))


def _decoder(sd: dict, x: Tensor) -> Tensor:
    for conv, norm in (("stream1_up.0", "stream1_up.1"), ("stream1_up.3", "stream1_up.4")):
        x = F.conv_transpose2d(x, sd[conv + ".weight"], sd.get(conv + ".bias"), stride=2, padding=1,
                               output_padding=1)
        x = F.relu(_norm(sd, norm, x))
    return torch.tanh(_conv(sd, "stream1_up.7", F.pad(x, (3, 3, 3, 3), mode="reflect")))


def _attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    b, c, h, w = v.shape
    weights = torch.softmax(torch.bmm(q.flatten(2).transpose(1, 2), k.flatten(2)), dim=-1)  # (B, N, N)
    return torch.bmm(v.flatten(2), weights.transpose(1, 2)).view(b, c, h, w)


def _dc(sd: dict, name: str, x: Tensor) -> Tensor:
    x = F.relu(F.instance_norm(_conv(sd, f"{name}.conv.0", x, padding=1)))
    return F.relu(F.instance_norm(_conv(sd, f"{name}.conv.4", x, padding=1)))


def _pona_block(sd: dict, b: str, x: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    f = torch.cat((x, p), 1)
    sa = _attend(_conv(sd, f"{b}.att2.query_conv", f), _conv(sd, f"{b}.att2.key_conv", f),
                 _conv(sd, f"{b}.att2.value_conv", f))
    f = sd[f"{b}.att2.gamma"] * sa + sd[f"{b}.att2.beta"] * f + f
    f = f + _dc(sd, f"{b}.dconv", f)
    x = x + _dc(sd, f"{b}.conv", x)
    x = x + _dc(sd, f"{b}.conv2", x)
    p = _dc(sd, f"{b}.dconv2", f)
    out = _attend(_conv(sd, f"{b}.query_conv", p), _conv(sd, f"{b}.key_conv", p), _conv(sd, f"{b}.value_conv", x))
    return sd[f"{b}.gamma"] * out + x, p


def _patn_block(sd: dict, b: str, x: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
    def stream(name: str, t: Tensor, last_norm: bool) -> Tensor:
        t = F.relu(_norm(sd, f"{name}.2", _conv(sd, f"{name}.1", F.pad(t, (1, 1, 1, 1), mode="reflect"))))
        t = _conv(sd, f"{name}.6", F.pad(t, (1, 1, 1, 1), mode="reflect"))
        return _norm(sd, f"{name}.7", t) if last_norm else t
    pose = stream(f"{b}.conv_block_stream2", p, False)
    x = x + stream(f"{b}.conv_block_stream1", x, True) * torch.sigmoid(pose)
    return x, torch.cat((pose, x), 1)


def authors_forward(sd: dict, arch: str, image: Tensor, pose_pair: Tensor) -> Tensor:
    """Their generator's eval-mode forward pass, written from the documented semantics of each name."""
    sd = {k.removeprefix("model."): v for k, v in sd.items()}
    x, p = _encoder(sd, "stream1_down", image), _encoder(sd, "stream2_down", pose_pair)
    block = _pona_block if arch == "pona" else _patn_block
    for k in range(1 + max(int(key.split(".")[1]) for key in sd if key.startswith("att."))):
        x, p = block(sd, f"att.{k}", x, p)
    return _decoder(sd, x)


def _load(cfg: TrainConfig, file: dict) -> torch.nn.Module:
    converted = convert(cfg, file, "src")
    model = build_generator(cfg.generator)
    model.load_state_dict(converted["generator"].state_dict)
    return model.eval()


def _inputs(h: int = 64, w: int = 32) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, h, w, generator=g) * 2 - 1, torch.rand(1, 36, h, w, generator=g)


# --------------------------------------------------------------------------- layout
@pytest.mark.parametrize(("arch", "dataset"), list(LISTINGS))
def test_export_writes_exactly_the_authors_layout(arch, dataset):
    with torch.device("meta"):
        model = build_generator(config(arch, dataset).generator)
    ours = [(k.removeprefix("model."), tuple(v.shape), v.dtype) for k, v in
            to_authors(model.state_dict(), "generator", arch).items()]
    assert ours == listing(arch, dataset)


# --------------------------------------------------------------------------- semantics
@pytest.mark.parametrize(("arch", "dataset", "shrink"), [
    ("pona", "market1501", 1), ("patn", "market1501", 1), ("pona", "deepfashion", 8), ("patn", "deepfashion", 8)])
def test_authors_file_imports_and_matches_their_forward_pass(arch, dataset, shrink, tmp_path):
    # weights fix no image size: run on 64 x 32 images to keep the test fast
    cfg = config(arch, dataset, "generator.image_size=[64,32]", f"generator.ngf={64 // shrink}")
    file = authors_file(arch, dataset, shrink)
    torch.save(file, tmp_path / "netG.pth")  # through the file reader once: weights_only, model. prefix
    model = _load(cfg, read_state_dict(tmp_path / "netG.pth", "src"))
    image, pose = _inputs()
    with torch.no_grad():
        ours, theirs = model(image, pose), authors_forward(file, arch, image, pose)
    assert ours.std() > 0.05  # not saturated: the comparison says something
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_equal_shape_units_are_matched_by_name_not_by_order():
    """A file listing conv2 before conv and key_conv before query_conv (same shapes each) imports to
    the same model: an importer that paired tensors by position would swap them and fail here."""
    cfg = small("pona", "market1501")
    file = authors_file("pona", "market1501", shrink=8)
    units = ("conv2.", "conv.", "key_conv", "query_conv")
    first = [k for k in file if any(f".{u}" in k for u in ("conv2.", "key_conv"))]
    reordered = OrderedDict((k, file[k]) for k in first)
    reordered.update((k, v) for k, v in file.items() if k not in reordered)
    assert list(reordered) != list(file) and units
    assert not torch.equal(file["model.att.0.conv.conv.0.weight"], file["model.att.0.conv2.conv.0.weight"])
    a, b = _load(cfg, file), _load(cfg, reordered)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert torch.equal(b.blocks[0].image_convs[0].body[0].weight, file["model.att.0.conv.conv.0.weight"])
    assert torch.equal(b.blocks[0].cross_attention.query.weight, file["model.att.0.query_conv.weight"])
    image, pose = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(b(image, pose), authors_forward(file, "pona", image, pose), rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- what old files carry
def test_model_prefix_is_optional():
    cfg = small("patn", "deepfashion")
    file = authors_file("patn", "deepfashion", shrink=8)
    bare = OrderedDict((k.removeprefix("model."), v) for k, v in file.items())
    a, b = _load(cfg, file), _load(cfg, bare)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_pytorch03_instance_norm_running_stats_are_dropped_with_a_note():
    file = authors_file("patn", "deepfashion", shrink=8)
    for name, c in (("stream1_down.2", 8), ("att.0.conv_block_stream1.2", 32), ("stream1_up.4", 8)):
        file[f"model.{name}.running_mean"] = torch.zeros(c)
        file[f"model.{name}.running_var"] = torch.ones(c)
    converted = convert(small("patn", "deepfashion"), file, "src")["generator"]
    assert len(converted.notes) == 1 and "dropped 6 instance-norm running statistics" in converted.notes[0]
    bn = authors_file("pona", "market1501", shrink=8)
    bn["model.att.0.conv.conv.1.running_mean"] = torch.zeros(32)  # blocks use instance norm: dropped too
    assert "dropped 1" in convert(small("pona", "market1501"), bn, "src")["generator"].notes[0]
    bn["model.stream1_down.3.running_mean"] = torch.zeros(8)  # a ReLU slot: nothing to drop
    with pytest.raises(LayoutError, match=r"unexpected key 'stream1_down\.3\.running_mean'"):
        convert(small("pona", "market1501"), bn, "src")


def test_missing_num_batches_tracked_is_filled_with_a_note():
    file = OrderedDict((k, v) for k, v in authors_file("patn", "market1501", shrink=8).items()
                       if not k.endswith("num_batches_tracked"))
    converted = convert(small("patn", "market1501"), file, "src")["generator"]
    assert "set 35 batch-norm num_batches_tracked counters to 0" in converted.notes[0]
    assert converted.state_dict["image_encoder.2.num_batches_tracked"].item() == 0


# --------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize(("file_of", "config_of", "message"), [
    (("patn", "market1501"), ("pona", "market1501", ),
     r"src: unexpected key 'att\.0\.conv_block_stream1\.1\.weight' .*is a PATN generator: use arch=patn"),
    (("pona", "market1501"), ("patn", "market1501"), r"is a PONA generator: use arch=pona \(preset=market1501"),
    (("pona", "market1501"), ("pona", "deepfashion"),
     r"unexpected key 'stream1_down\.2\.weight' \(8,\).*batch norm, the config instance norm: set "
     r"generator\.norm=batch \(preset=market1501\)"),
    (("pona", "market1501"), ("pona", "market1501", "generator.n_blocks=2"),
     r"unexpected key 'att\.2\.gamma' \(1,\) for a pona generator \(2 blocks.*set generator\.n_blocks=3"),
    (("pona", "market1501"), ("pona", "market1501", "generator.ngf=4"),
     r"key 'stream1_down\.1\.weight' has shape \(8, 3, 7, 7\), expected \(4, 3, 7, 7\)"),
])
def test_a_file_that_does_not_fit_names_the_first_key_and_the_fix(file_of, config_of, message):
    with pytest.raises(LayoutError, match=message):
        convert(small(*config_of), authors_file(*file_of, shrink=8), "src")


def test_a_discriminator_given_as_generator_and_the_reverse_are_named():
    cfg = small("patn", "market1501")
    with torch.device("meta"):
        d_pose, _ = build_discriminators(cfg.generator, cfg.discriminator)
    d_file = to_authors(d_pose.state_dict(), "discriminator")
    with pytest.raises(LayoutError, match=r"is a discriminator \(netD_PP / netD_PB\): pass it as d_pose="):
        convert(cfg, d_file, "src")
    g_file = authors_file("patn", "market1501", shrink=8)
    with pytest.raises(LayoutError, match=r"d_pose: unexpected key 'model\.stream1_down.*is a generator \(netG\): "
                                          r"pass it as src="):
        convert(cfg, g_file, "src", d_pose=g_file)


def test_command_errors_are_one_line_and_early(tmp_path, capsys):
    torch.save(authors_file("patn", "market1501", shrink=8), tmp_path / "g.pth")
    assert import_main([f"src={tmp_path / 'g.pth'}", "arch=patn", "preset=market1501",
                        f"out={tmp_path / 'x.pt'}"]) == 2
    assert "arch=patn but market1501 builds a pona generator: use preset=patn-market1501" in capsys.readouterr().err
    assert import_main([f"src={tmp_path / 'g.pth'}", "arch=pona", "preset=market1501", "generator.ngf=8",
                        f"out={tmp_path / 'x.pt'}"]) == 1
    assert "use arch=patn" in capsys.readouterr().err
    assert import_main([f"src={tmp_path / 'nope.pth'}", "arch=pona", f"out={tmp_path / 'x.pt'}"]) == 1
    assert "src=" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    assert import_main(["arch=pona", f"out={tmp_path / 'x.pt'}"]) == 2
    assert "missing src=" in capsys.readouterr().err


# --------------------------------------------------------------------------- round trip and training
@pytest.mark.parametrize("arch", ["pona", "patn"])
def test_export_then_import_is_bit_identical_and_training_resumes(arch, pair_data, tmp_path):
    extra = ["generator.arch=patn", "generator.n_blocks=2"] if arch == "patn" else []
    cfg = load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={tmp_path / 'run'}", *extra)
    Trainer(cfg).fit(max_iterations=2)
    original = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME, GENERATOR_FORMAT)
    assert export_main([f"checkpoint={tmp_path / 'run' / CHECKPOINT_NAME}", f"out={tmp_path / 'authors'}"]) == 0
    files = {k: tmp_path / "authors" / f"latest_net_{n}.pth" for k, n in
             (("src", "netG"), ("d_pose", "netD_PP"), ("d_appearance", "netD_PB"))}
    assert all(f.is_file() for f in files.values())
    assert all(k.startswith("model.att.0.") or not k.startswith("model.att")
               for k in read_state_dict(files["src"], "src") if ".0." in k)
    args = [f"{k}={v}" for k, v in files.items()] + [f"arch={arch}", f"out={tmp_path / 'imported.pt'}", *TINY_TRAIN,
                                                     *[e for e in extra if not e.startswith("generator.arch")]]
    assert import_main(args) == 0
    back = load_checkpoint(tmp_path / "imported.pt", GENERATOR_FORMAT)
    for key in ("generator", "d_pose", "d_appearance"):
        assert list(back[key]) == list(original[key])
        for name, value in original[key].items():
            assert back[key][name].dtype == value.dtype and torch.equal(back[key][name], value), (key, name)
    # exporting the imported checkpoint writes the same files again
    again = export(tmp_path / "imported.pt", tmp_path / "again")
    for path in again:
        a, b = torch.load(path, weights_only=True), torch.load(tmp_path / "authors" / path.name, weights_only=True)
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    # training starts from the imported weights (copied in as the run's checkpoint) and goes on
    run = tmp_path / "resumed"
    run.mkdir()
    shutil.copy(tmp_path / "imported.pt", run / CHECKPOINT_NAME)
    trainer = Trainer(load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={run}", *extra))
    trainer.load_state_dict(load_checkpoint(run / CHECKPOINT_NAME, GENERATOR_FORMAT), run / CHECKPOINT_NAME)
    for net, key in ((trainer.generator, "generator"), (trainer.d_pose, "d_pose")):
        assert all(torch.equal(v, original[key][k]) for k, v in net.state_dict().items())
    summary = Trainer(load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={run}", *extra)).fit(
        max_iterations=2)
    assert summary["iteration"] == 2 and "opt_g" in load_checkpoint(run / CHECKPOINT_NAME, GENERATOR_FORMAT)


def test_imported_generator_only_checkpoint_generates(tmp_path):
    from pona_model.inference import load_generator

    cfg = small("patn", "market1501")
    file = authors_file("patn", "market1501", shrink=8)
    converted = convert(cfg, file, "src")
    path = tmp_path / "patn.pt"
    torch.save(imported_state(cfg, converted, {"generator": {"file": "src"}}), path)
    loaded = load_generator(path, "cpu")
    assert type(loaded.generator).__name__ == "PATNGenerator"
    image, pose = _inputs()
    torch.testing.assert_close(loaded.generator(image, pose), authors_forward(file, "patn", image, pose),
                               rtol=1e-4, atol=1e-5)


def test_discriminator_layouts_follow_the_authors_names():
    cfg = config("pona", "market1501")
    with torch.device("meta"):
        d_pose, _ = build_discriminators(cfg.generator, cfg.discriminator)
        p_pose, _ = build_discriminators(config("patn", "market1501").generator, cfg.discriminator)
    pona = list(to_authors(d_pose.state_dict(), "discriminator"))
    patn = list(to_authors(p_pose.state_dict(), "discriminator"))
    assert pona[:3] == ["model.1.weight_orig", "model.1.weight_u", "model.1.weight_v"]
    assert patn[:2] == ["model.1.weight", "model.2.weight"] and "model.10.conv_block.1.weight" in patn
    assert not any("weight_orig" in k for k in patn)


def test_imported_iteration_sets_the_schedule(pair_data, tmp_path):
    from pona_model.trainer import linear_decay

    extra = ["schedule.n_epochs=2", "schedule.n_epochs_decay=2"]
    cfg = load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={tmp_path / 'run'}", *extra)
    model = build_generator(cfg.generator)
    torch.save(to_authors(model.state_dict(), "generator", "pona"), tmp_path / "g.pth")
    assert import_main([f"src={tmp_path / 'g.pth'}", "arch=pona", f"out={tmp_path / 'g.pt'}", "iteration=5",
                        *TINY_TRAIN, *extra]) == 0
    state = load_checkpoint(tmp_path / "g.pt", GENERATOR_FORMAT)
    assert state["iteration"] == 5 and "d_pose" not in state
    trainer = Trainer(cfg)
    trainer.load_state_dict(state, tmp_path / "g.pt")
    s = cfg.schedule
    factor = linear_decay(s.pairs_per_epoch / s.batch_size, s.n_epochs, s.n_epochs_decay)(5)
    assert trainer.iteration == 5 and 0 < factor < 1
    for opt in (trainer.opt_g, trainer.opt_dp, trainer.opt_da):
        assert opt.param_groups[0]["lr"] == pytest.approx(s.lr * factor)
    # another network config is refused with the section named
    other = Trainer(load_train_config(*TINY_TRAIN, f"data.root={pair_data}", f"out={tmp_path / 'b'}", *extra,
                                      "discriminator.ndf=4"))
    with pytest.raises(CheckpointError, match="imported weights for another discriminator config"):
        other.load_state_dict(state, tmp_path / "g.pt")
