"""The Market index on tiny hand-made trees: the exact table, and one actionable error per bad layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from poseformats.market_names import parse_name
from reid.market_index import (
    COLUMNS,
    MARKET_DIRNAME,
    MarketLayoutError,
    index_market,
    resolve_root,
)

TRAIN = ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s3_076444_02.jpg"]
QUERY = ["0005_c1s1_001351_00.jpg", "0009_c6s1_004150_00.jpg"]
GALLERY = ["-1_c1s1_000401_03.jpg", "0000_c1s1_000151_01.jpg", "0005_c2s1_000976_01.jpg",
           "0009_c4s4_012345_02.jpg"]


def _write_image(path: Path, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 8, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def _make_market(root: Path, train=TRAIN, query=QUERY, gallery=GALLERY) -> Path:
    for folder, names in (("bounding_box_train", train), ("query", query), ("bounding_box_test", gallery)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, name in enumerate(names):
            _write_image(root / folder / name, seed=i)
    return root


@pytest.fixture
def market(tmp_path: Path) -> Path:
    return _make_market(tmp_path / MARKET_DIRNAME)


def test_exact_table(market: Path) -> None:
    (market / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")  # ignored, as in Market
    table = index_market(market, progress=False)
    assert list(table.columns) == COLUMNS
    assert table["name"].tolist() == sorted(TRAIN) + sorted(QUERY) + sorted(GALLERY)
    assert table["split"].tolist() == ["train"] * 3 + ["query"] * 2 + ["gallery"] * 4
    assert table["identity"].tolist() == [2, 2, 7, 5, 9, -1, 0, 5, 9]
    assert table["identity_str"].tolist() == ["0002", "0002", "0007", "0005", "0009", "-1", "0000", "0005",
                                              "0009"]
    assert table["camera"].tolist() == [1, 2, 3, 1, 6, 1, 1, 2, 4]
    assert table["sequence"].tolist() == [1, 1, 3, 1, 1, 1, 1, 1, 4]
    assert table["frame"].tolist() == [451, 301, 76444, 1351, 4150, 401, 151, 976, 12345]
    assert table["box"].tolist() == [3, 1, 2, 0, 0, 3, 1, 1, 2]
    assert table["kind"].tolist() == ["normal"] * 5 + ["junk", "distractor", "normal", "normal"]
    assert str(table["identity"].dtype) == "int64" and str(table["camera"].dtype) == "int64"
    assert table["path"].iloc[0] == str(market.absolute() / "bounding_box_train" / TRAIN[0])
    assert all(Path(p).is_file() for p in table["path"])


def test_parse_name_edge_cases() -> None:
    assert parse_name("0002_c1s1_000451_03_gen.png").identity == 2  # generated-image suffix allowed
    assert parse_name("-1_c3s2_000001_00.jpg").kind == "junk"
    assert parse_name("0002_c7s1_000451_03.jpg") is None  # Market has cameras 1..6
    assert parse_name("img_001.jpg") is None


def test_nested_root_and_deterministic(tmp_path: Path, market: Path) -> None:
    assert resolve_root(tmp_path) == market.absolute()
    a = index_market(tmp_path, progress=False)
    b = index_market(market, progress=False)
    assert a.equals(b)


def test_train_only_folder(tmp_path: Path) -> None:
    """An augmented training set written by the pipeline has only bounding_box_train."""
    root = tmp_path / "augmented"
    for i, name in enumerate(TRAIN + ["0002_c1s1_000451_03_gen.jpg"]):
        _write_image(root / "bounding_box_train" / name, seed=i)
    table = index_market(root, splits=("train",), verify=True, progress=False)
    assert len(table) == 4 and set(table["split"]) == {"train"}
    with pytest.raises(MarketLayoutError, match=r"augmented/query is missing \(the query split\)"):
        index_market(root)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(MarketLayoutError, match=r"nowhere does not exist.*bounding_box_train"):
        index_market(tmp_path / "nowhere")


def test_missing_split_folder(tmp_path: Path, market: Path) -> None:
    (market / "bounding_box_test").rename(market / "test")
    with pytest.raises(MarketLayoutError) as info:
        index_market(tmp_path)
    message = str(info.value)
    assert "bounding_box_test is missing (the gallery split)" in message
    assert "Folders found in" in message and "test" in message and "splits=('train',)" in message


def test_unparsable_names_listed_with_count(tmp_path: Path) -> None:
    bad = [f"img_{i:02d}.jpg" for i in range(7)]
    root = _make_market(tmp_path / "m", train=TRAIN + bad)
    with pytest.raises(MarketLayoutError) as info:
        index_market(root)
    message = str(info.value)
    assert message.startswith("7 file name(s) in ") and "bounding_box_train" in message
    assert "img_00.jpg, img_01.jpg, img_02.jpg, img_03.jpg, img_04.jpg, ... (2 more)" in message
    assert "img_05.jpg" not in message


def test_identity_overlap(tmp_path: Path) -> None:
    root = _make_market(tmp_path / "m", gallery=GALLERY + ["0007_c5s1_000100_01.jpg"])
    with pytest.raises(MarketLayoutError, match=r"1 identity appears in both train and test.*: 0007; "
                                                r"e\.g\. .*0007_c3s3_076444_02\.jpg and .*0007_c5s1"):
        index_market(root)


def test_distractor_and_junk_may_repeat_across_splits(tmp_path: Path) -> None:
    root = _make_market(tmp_path / "m", train=TRAIN + ["0000_c1s1_000001_00.jpg", "-1_c1s1_000002_00.jpg"])
    assert len(index_market(root, progress=False)) == 11


def test_empty_split(tmp_path: Path) -> None:
    root = _make_market(tmp_path / "m", query=[])
    with pytest.raises(MarketLayoutError, match=r"query \(the query split\) holds no images"):
        index_market(root)


def test_full_check_finds_undecodable_image(tmp_path: Path) -> None:
    root = _make_market(tmp_path / "m")
    broken = root / "bounding_box_test" / GALLERY[2]
    broken.write_bytes(broken.read_bytes()[:40])  # truncated JPEG
    index_market(root)  # names and layout are fine; decoding is only checked on request
    with pytest.raises(MarketLayoutError, match=r"1 of 9 images do not decode: .*0005_c2s1_000976_01\.jpg"):
        index_market(root, verify=True, progress=False)
