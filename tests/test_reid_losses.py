"""Re-ID losses against known answers on hand-made batches, and the trainer honouring each key."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from reid.losses import ReidLoss, ReidLossConfig, batch_hard_triplet, soft_cross_entropy, targets


def test_target_distributions_exactly():
    labels = torch.tensor([0, 2, 1])
    generated = torch.tensor([False, True, True])
    hard = targets(labels, 4, generated=generated, rule="hard")
    assert torch.equal(hard, torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]]))
    lsro = targets(labels, 4, generated=generated, rule="lsro")
    assert torch.equal(lsro, torch.tensor([[1.0, 0, 0, 0], [0.25] * 4, [0.25] * 4]))
    smooth = targets(labels, 4, generated=generated, rule="smooth", epsilon=0.2)
    assert torch.allclose(smooth, torch.tensor([[1.0, 0, 0, 0], [0.05, 0.05, 0.85, 0.05], [0.05, 0.85, 0.05, 0.05]]))
    every = targets(labels, 4, smoothing=0.1, generated=generated, rule="lsro")
    assert torch.allclose(every[0], torch.tensor([0.925, 0.025, 0.025, 0.025])) and torch.equal(every[1], lsro[1])
    assert torch.allclose(every.sum(1), torch.ones(3))
    with pytest.raises(ValueError, match=r"generated_label \(augment\.label\)"):
        targets(labels, 4, rule="soft")


def test_cross_entropy_and_triplet_known_answers():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    labels = torch.tensor([0, 2])
    one_hot = targets(labels, 3)
    assert soft_cross_entropy(logits, one_hot).item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item(), abs=1e-6)
    # 1-D points: anchors 0 and 1 satisfy the margin, anchor 2 (d_ap 2, d_an 2) gives 0.3, anchor 3 gives 0.
    feats = torch.tensor([[0.0], [1.0], [3.0], [5.0]])
    assert batch_hard_triplet(feats, torch.tensor([0, 0, 1, 1]), 0.3).item() == pytest.approx(0.075, abs=1e-5)
    assert batch_hard_triplet(feats, torch.tensor([0, 1, 2, 3]), 0.3).item() == 0.0  # no positives: nothing


def test_loss_parts_follow_the_config():
    logits, feats, labels = torch.randn(4, 3, generator=torch.Generator().manual_seed(0)), torch.tensor(
        [[0.0], [1.0], [3.0], [5.0]]), torch.tensor([0, 0, 1, 1])
    plain, parts = ReidLoss(ReidLossConfig(), 3)(logits, feats, labels)
    assert set(parts) == {"ce"} and plain.item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item())
    both, parts = ReidLoss(ReidLossConfig(triplet_weight=2.0, label_smoothing=0.1), 3)(logits, feats, labels)
    assert parts["triplet"] == pytest.approx(0.075, abs=1e-5)
    assert both.item() == pytest.approx(parts["ce"] + 2 * 0.075, abs=1e-5) and parts["ce"] != pytest.approx(plain.item())
    generated = torch.tensor([True, False, False, False])
    lsro, _ = ReidLoss(ReidLossConfig(generated_label="lsro"), 3)(logits, None, labels, generated)
    expected = soft_cross_entropy(logits, targets(labels, 3, generated=generated, rule="lsro"))
    assert lsro.item() == pytest.approx(expected.item()) and lsro.item() != pytest.approx(plain.item())


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    from synthmarket import SynthMarketConfig, generate_synthmarket

    root = tmp_path_factory.mktemp("losses") / "synthmarket"
    generate_synthmarket(root, SynthMarketConfig(out=str(root), n_train_ids=8, n_test_ids=4, n_distractors=2, n_junk=2,
                                                 height=64, width=32, supersample=1, workers=1, progress=False,
                                                 test_pairs=4))
    names = sorted(p.name for p in (root / "bounding_box_train").glob("*.jpg"))
    pd.DataFrame({"name": names, "source": ["generated" if i % 2 else "real" for i in range(len(names))]}).to_csv(
        root / "manifest_merged.csv", index=False)
    return root


def _first_step_loss(root: Path, out: Path, *extra: str) -> float:
    from reid.train_config import load_reid_config
    from reid.trainer import ReidTrainer

    cfg = load_reid_config(f"data.root={root}", f"out={out}", "model.backbone=resnet18", "model.weights=random",
                           "data.image_size=64,32", "optim.batch_size=8", "optim.lr=0.01", "num_workers=0",
                           "progress=false", "precision=fp32", *extra)
    trainer = ReidTrainer(cfg)
    trainer.model.train()
    return trainer.step(next(iter(trainer._epoch_loader(0))))[0]


def test_trainer_honours_every_loss_key(tiny_root: Path, tmp_path: Path):
    base = _first_step_loss(tiny_root, tmp_path / "base")
    assert _first_step_loss(tiny_root, tmp_path / "smooth", "loss.label_smoothing=0.1") != base
    pk = ("data.sampler=RandomIdentitySampler", "data.num_instances=2")
    assert _first_step_loss(tiny_root, tmp_path / "tri", *pk, "loss.triplet_weight=1") != _first_step_loss(
        tiny_root, tmp_path / "pk", *pk)
    assert _first_step_loss(tiny_root, tmp_path / "bnneck", "model.head=bnneck") != base
    # generated_label reads the training folder's manifest.csv (source column), as merge writes it
    (tiny_root / "manifest.csv").rename(tiny_root / "manifest_synthmarket.csv")
    (tiny_root / "manifest_merged.csv").rename(tiny_root / "manifest.csv")
    try:
        hard = _first_step_loss(tiny_root, tmp_path / "hard", "loss.generated_label=hard")
        lsro = _first_step_loss(tiny_root, tmp_path / "lsro", "loss.generated_label=lsro")
    finally:
        (tiny_root / "manifest.csv").rename(tiny_root / "manifest_merged.csv")
        (tiny_root / "manifest_synthmarket.csv").rename(tiny_root / "manifest.csv")
    assert hard == base and lsro != hard
