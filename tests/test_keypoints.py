import math

import numpy as np
import pytest
import torch

from poseformats import keypoints
from poseformats.keypoints import (
    FLIP_PERMUTATION,
    JOINT_NAMES,
    LIMBS,
    MASK_LIMBS,
    MISSING,
    N_JOINTS,
    draw_skeleton,
    flip_keypoints,
    has_torso,
    n_visible,
    overlay_skeleton,
    pose_maps,
    scale_keypoints,
)


def random_poses(batch: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kp = np.stack([rng.integers(0, height, (batch, N_JOINTS)), rng.integers(0, width, (batch, N_JOINTS))], -1)
    missing = rng.random((batch, N_JOINTS)) < 0.25
    kp[missing] = MISSING
    return kp.astype(np.int32)


def test_vocabulary_is_consistent():
    assert len(JOINT_NAMES) == N_JOINTS == 18
    assert JOINT_NAMES[keypoints.R_SHOULDER] == "Rsho" and JOINT_NAMES[keypoints.L_HIP] == "Lhip"
    assert sorted(FLIP_PERMUTATION) == list(range(N_JOINTS))
    assert all(FLIP_PERMUTATION[FLIP_PERMUTATION[i]] == i for i in range(N_JOINTS))
    for i, j in enumerate(FLIP_PERMUTATION):
        a, b = JOINT_NAMES[i], JOINT_NAMES[j]
        assert a == b if i == j else {a[0], b[0]} == {"R", "L"} and a[1:] == b[1:]
    assert len(LIMBS) == 19 and len(MASK_LIMBS) == 23
    assert all(0 <= a < N_JOINTS and 0 <= b < N_JOINTS for a, b in LIMBS + MASK_LIMBS)
    # Shoulder-to-ear edges join joints of the same side.
    assert (keypoints.R_SHOULDER, keypoints.R_EAR) in LIMBS and (keypoints.L_SHOULDER, keypoints.L_EAR) in LIMBS


def test_pose_map_values_at_hand_computed_points():
    kp = torch.full((18, 2), MISSING, dtype=torch.int64)
    kp[3] = torch.tensor([10, 5])
    maps = pose_maps(kp, 32, 16)
    assert maps.shape == (18, 32, 16) and maps.dtype == torch.float32
    assert maps[3, 10, 5].item() == 1.0
    assert maps[3, 13, 9].item() == pytest.approx(math.exp(-25 / 72), rel=1e-6)
    assert maps[3, 0, 15].item() == pytest.approx(math.exp(-(100 + 100) / 72), rel=1e-6)
    assert maps[3].argmax().item() == 10 * 16 + 5
    assert torch.count_nonzero(maps[torch.arange(18) != 3]) == 0
    sharper = pose_maps(kp, 32, 16, sigma=2.0)
    assert sharper[3, 10, 7].item() == pytest.approx(math.exp(-4 / 8), rel=1e-6)


def test_joint_with_one_missing_coordinate_is_missing():
    kp = torch.zeros((18, 2), dtype=torch.int64)
    kp[0, 0] = MISSING
    kp[1, 1] = MISSING
    maps = pose_maps(kp, 8, 8)
    assert maps[0].abs().sum() == 0 and maps[1].abs().sum() == 0 and maps[2, 0, 0] == 1.0
    assert n_visible(kp.numpy()) == 16


def test_batch_equals_per_sample_loop_and_dense_formula():
    kp = torch.from_numpy(random_poses(5, 24, 12))
    batch = pose_maps(kp, 24, 12)
    assert batch.shape == (5, 18, 24, 12)
    for b in range(5):
        torch.testing.assert_close(batch[b], pose_maps(kp[b], 24, 12), rtol=0, atol=0)
    yy, xx = torch.meshgrid(
        torch.arange(24.0, dtype=torch.float64), torch.arange(12.0, dtype=torch.float64), indexing="ij"
    )
    for b in range(5):
        for j in range(18):
            y, x = kp[b, j].tolist()
            dense = torch.zeros(24, 12, dtype=torch.float64)
            if y != MISSING and x != MISSING:
                dense = torch.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 72)
            torch.testing.assert_close(batch[b, j].double(), dense, rtol=1e-6, atol=1e-12)


def test_pose_maps_accept_numpy_and_stay_on_the_input_device():
    kp = random_poses(2, 16, 8)
    torch.testing.assert_close(pose_maps(kp, 16, 8), pose_maps(torch.from_numpy(kp), 16, 8))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    on_device = pose_maps(torch.from_numpy(kp).to(device), 16, 8)
    assert on_device.device.type == device
    torch.testing.assert_close(on_device.cpu(), pose_maps(torch.from_numpy(kp), 16, 8), rtol=1e-6, atol=1e-7)


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        pose_maps(torch.zeros(17, 2), 8, 8)


def test_scale_keypoints():
    kp = np.full((18, 2), MISSING, dtype=np.int32)
    kp[0] = (0, 0)
    kp[1] = (127, 63)
    kp[2] = (10, 5)
    kp[3, 0] = 4  # x missing: the joint stays fully missing
    up = scale_keypoints(kp, (128, 64), (256, 128))
    assert up.dtype == np.int32
    assert up[0].tolist() == [1, 1] and up[1].tolist() == [255, 127] and up[2].tolist() == [21, 11]
    assert (up[3:] == MISSING).all()
    normalised = kp.copy()
    normalised[3] = MISSING
    np.testing.assert_array_equal(scale_keypoints(up, (256, 128), (128, 64)), normalised)
    down = scale_keypoints(kp, (128, 64), (64, 32))
    assert down[0].tolist() == [0, 0] and down[1].tolist() == [63, 31] and down[2].tolist() == [5, 2]
    # Identity scaling changes nothing; tensors give tensors.
    batch = random_poses(3, 128, 64)
    np.testing.assert_array_equal(scale_keypoints(batch, (128, 64), (128, 64)), batch)
    as_tensor = scale_keypoints(torch.from_numpy(batch), (128, 64), (64, 32))
    assert isinstance(as_tensor, torch.Tensor) and as_tensor.dtype == torch.int32
    np.testing.assert_array_equal(as_tensor.numpy(), scale_keypoints(batch, (128, 64), (64, 32)))


def test_flip_keypoints():
    kp = np.full((18, 2), MISSING, dtype=np.int64)
    kp[keypoints.NOSE] = (5, 30)
    kp[keypoints.R_SHOULDER] = (20, 10)
    kp[keypoints.L_HIP] = (60, 50)
    flipped = flip_keypoints(kp, 64)
    assert flipped[keypoints.NOSE].tolist() == [5, 33]
    assert flipped[keypoints.L_SHOULDER].tolist() == [20, 53] and flipped[keypoints.R_SHOULDER].tolist() == [-1, -1]
    assert flipped[keypoints.R_HIP].tolist() == [60, 13]
    assert n_visible(flipped) == 3
    assert kp[keypoints.NOSE].tolist() == [5, 30]  # input untouched
    batch = random_poses(4, 128, 64, seed=1)
    np.testing.assert_array_equal(flip_keypoints(flip_keypoints(batch, 64), 64), batch)
    as_tensor = flip_keypoints(torch.from_numpy(batch), 64)
    np.testing.assert_array_equal(as_tensor.numpy(), flip_keypoints(batch, 64))
    # Flipping keypoints then drawing maps equals mirroring the maps (and swapping channels).
    maps = pose_maps(torch.from_numpy(batch), 128, 64)
    flipped_maps = pose_maps(as_tensor, 128, 64)
    torch.testing.assert_close(flipped_maps, maps.flip(-1)[:, list(FLIP_PERMUTATION)], rtol=1e-6, atol=1e-7)


def test_has_torso_and_n_visible():
    kp = np.zeros((18, 2), dtype=np.int32)
    assert has_torso(kp) and n_visible(kp) == 18
    for joint in (keypoints.R_SHOULDER, keypoints.L_SHOULDER, keypoints.R_HIP, keypoints.L_HIP):
        broken = kp.copy()
        broken[joint, 1] = MISSING
        assert not has_torso(broken) and n_visible(broken) == 17
    head_only = np.full((18, 2), MISSING, dtype=np.int32)
    head_only[keypoints.NOSE] = (3, 3)
    assert not has_torso(head_only) and n_visible(head_only) == 1


def test_drawing():
    kp = np.full((18, 2), MISSING, dtype=np.int32)
    kp[keypoints.NECK] = (10, 16)
    kp[keypoints.R_HIP] = (40, 10)
    picture = draw_skeleton(kp, 64, 32)
    assert picture.shape == (64, 32, 3) and picture.dtype == np.uint8
    neck_hip_colour = keypoints.limb_colours()[LIMBS.index((keypoints.NECK, keypoints.R_HIP))]
    assert tuple(picture[25, 13]) == neck_hip_colour  # on the segment, between the joints
    assert tuple(picture[10, 16]) == (255, 255, 255)
    assert picture[60, 30].sum() == 0
    assert draw_skeleton(np.full((18, 2), MISSING), 8, 4).sum() == 0
    image = np.full((64, 32, 3), 100, dtype=np.uint8)
    over = overlay_skeleton(image, torch.from_numpy(kp))
    assert tuple(over[25, 13]) == neck_hip_colour and tuple(over[60, 30]) == (100, 100, 100)
    assert (image == 100).all()
    assert len(set(keypoints.limb_colours())) == len(LIMBS)
