"""The regime search's derived training set ``kept-cameras`` (``bench/reid_finetune_curve.py``): the kept
images plus exactly the real missing images from cameras where their person has a kept image."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import load_bench


def _folder(root: Path, names: list[str]) -> Path:
    (root / "bounding_box_train").mkdir(parents=True)
    for n in names:
        (root / "bounding_box_train" / n).write_bytes(n.encode())
    return root


def test_kept_cameras_keeps_the_missing_images_of_kept_cameras_only(tmp_path: Path) -> None:
    bench = load_bench("reid_finetune_curve")
    full = ["0001_c1s1_000001_01.jpg", "0001_c1s1_000002_01.jpg", "0001_c2s1_000003_01.jpg",
            "0001_c3s1_000004_01.jpg", "0002_c1s1_000005_01.jpg", "0002_c4s1_000006_01.jpg",
            "0002_c4s1_000007_01.jpg"]
    kept = ["0001_c1s1_000001_01.jpg", "0002_c4s1_000006_01.jpg"]
    root = bench.kept_cameras_set(str(_folder(tmp_path / "kept", kept)), str(_folder(tmp_path / "full", full)),
                                  tmp_path / "cache")
    chosen = sorted(p.name for p in (Path(root) / "bounding_box_train").iterdir())
    # person 1 was kept in c1: both c1 images, not c2 / c3; person 2 in c4: both c4 images, not c1
    assert chosen == ["0001_c1s1_000001_01.jpg", "0001_c1s1_000002_01.jpg", "0002_c4s1_000006_01.jpg",
                      "0002_c4s1_000007_01.jpg"]
    assert (Path(root) / "bounding_box_train" / chosen[1]).read_bytes() == chosen[1].encode()  # the real file
    assert bench.kept_cameras_set(str(tmp_path / "kept"), str(tmp_path / "full"), tmp_path / "cache") == root
