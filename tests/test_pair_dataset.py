import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from pona_model.pair_dataset import PairDataset
from poseformats.annotations import FormatError, write_annotations, write_pairs
from poseformats.keypoints import MISSING


def pose(y: int, x: int) -> np.ndarray:
    kp = np.full((18, 2), MISSING, dtype=np.int32)
    kp[0] = (y, x)
    kp[1] = (y + 1, x + 1)
    return kp


@pytest.fixture
def data(tmp_path):
    images = tmp_path / "train"
    images.mkdir()
    pixels = np.zeros((8, 4, 3), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 128)
    Image.fromarray(pixels).save(images / "0001_a.png")
    Image.fromarray(np.full((16, 8, 3), 255, dtype=np.uint8)).save(images / "0001_b.png")  # 2x larger
    annotations = {"0001_a.png": pose(3, 2), "0001_b.png": pose(6, 4)}
    pairs = pd.DataFrame({"from": ["0001_a.png", "0001_b.png"], "to": ["0001_b.png", "0001_a.png"]})
    return images, annotations, pairs


def test_item_tensors_ranges_and_scaled_keypoints(data):
    images, annotations, pairs = data
    dataset = PairDataset(images, annotations, pairs, image_size=(8, 4))
    assert len(dataset) == 2
    item = dataset[0]
    assert set(item) == {"condition", "target", "kp_condition", "kp_target", "condition_name", "target_name"}
    assert item["condition_name"] == "0001_a.png" and item["target_name"] == "0001_b.png"
    for key in ("condition", "target"):
        assert item[key].shape == (3, 8, 4) and item[key].dtype == torch.float32
        assert item[key].min() >= -1 and item[key].max() <= 1
    torch.testing.assert_close(item["condition"][:, 0, 0], torch.tensor([1.0, -1.0, 128 / 127.5 - 1]))
    assert (item["condition"][:, 1:] == -1).all()
    assert (item["target"] == 1).all()  # resized from 16 x 8, still white
    assert item["kp_condition"].dtype == torch.int64 and item["kp_condition"].shape == (18, 2)
    assert item["kp_condition"][:2].tolist() == [[3, 2], [4, 3]]
    # b is stored at 16 x 8: (6, 4) -> (3, 2) and (7, 5) -> (3, 2) at 8 x 4; missing joints stay -1.
    assert item["kp_target"][:2].tolist() == [[3, 2], [3, 2]]
    assert (item["kp_target"][2:] == MISSING).all()
    assert dataset[1]["kp_condition"].tolist() == item["kp_target"].tolist()
    assert dataset.target_keypoints(0).tolist() == item["kp_target"].tolist()  # downscaled from the header


def test_upscaling_and_batching_with_a_dataloader(data):
    images, annotations, pairs = data
    dataset = PairDataset(images, annotations, pairs, image_size=(16, 8))
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=2)))
    assert batch["condition"].shape == (2, 3, 16, 8) and batch["kp_target"].shape == (2, 18, 2)
    assert batch["kp_condition"][0, :2].tolist() == [[7, 5], [9, 7]]  # (3, 2), (4, 3) doubled, centres kept
    assert batch["kp_target"][0, :2].tolist() == [[6, 4], [7, 5]]  # stored size: unchanged
    for i in range(len(dataset)):  # the header-only path scales exactly as loading does
        assert dataset.target_keypoints(i).tolist() == dataset[i]["kp_target"].tolist()
    assert batch["condition_name"] == ["0001_a.png", "0001_b.png"]


def test_reads_csv_files(data, tmp_path):
    images, annotations, pairs = data
    write_annotations(tmp_path / "ann.csv", annotations)
    write_pairs(tmp_path / "pairs.csv", pairs)
    dataset = PairDataset(images, tmp_path / "ann.csv", tmp_path / "pairs.csv", image_size=(8, 4))
    assert dataset[1]["condition_name"] == "0001_b.png"
    write_pairs(tmp_path / "pairs.csv", pd.DataFrame({"from": ["0001_a.png"], "to": ["0009_x.png"]}))
    with pytest.raises(FormatError, match=r"line 2: '0009_x\.png' has no annotation"):
        PairDataset(images, annotations, tmp_path / "pairs.csv", image_size=(8, 4))


def test_construction_errors(data, tmp_path):
    images, annotations, pairs = data
    with pytest.raises(FileNotFoundError, match=r"image directory .*nowhere"):
        PairDataset(tmp_path / "nowhere", annotations, pairs, image_size=(8, 4))
    bad = pd.DataFrame({"from": ["0001_a.png", "x.png", "y.png"], "to": ["z.png", "0001_a.png", "x.png"]})
    with pytest.raises(ValueError, match=r"3 image\(s\) .*no annotation, e.g. \['x.png', 'y.png', 'z.png'\]"):
        PairDataset(images, annotations, bad, image_size=(8, 4))


def test_missing_or_broken_image_is_named(data):
    images, annotations, _ = data
    annotations = {**annotations, "0001_c.png": pose(1, 1), "0001_d.png": pose(1, 1)}
    (images / "0001_d.png").write_bytes(b"not an image")
    more = pd.DataFrame({"from": ["0001_a.png", "0001_a.png"], "to": ["0001_c.png", "0001_d.png"]})
    dataset = PairDataset(images, annotations, more, image_size=(8, 4))
    with pytest.raises(FileNotFoundError, match=r"0001_c\.png"):
        dataset[0]
    with pytest.raises(OSError, match=r"0001_d\.png cannot be decoded"):
        dataset[1]
