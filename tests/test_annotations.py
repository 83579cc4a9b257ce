import json

import numpy as np
import pandas as pd
import pytest

from poseformats.annotations import (
    FormatError,
    build_pairs,
    identity_of,
    read_annotations,
    read_pairs,
    write_annotations,
    write_pairs,
)
from poseformats.keypoints import L_HIP, MISSING

YS = list(range(18))
XS = [v - 1 for v in range(18)]  # starts with -1


def full_pose(offset: int = 0) -> np.ndarray:
    return np.stack([np.arange(18) + offset, np.arange(18) * 2 + offset], 1).astype(np.int32)


def write(tmp_path, text: str, name: str = "ann.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_annotation_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    table = {
        f"{i:04d}_c1s1_{i:06d}_00.jpg": rng.integers(-1, 200, (18, 2)).astype(np.int32) for i in range(7)
    }
    table = dict(reversed(list(table.items())))  # file order must be kept, not sorted
    path = tmp_path / "sub" / "ann.csv"
    write_annotations(path, table)
    back = read_annotations(path)
    assert list(back) == list(table)
    for name, kp in table.items():
        assert back[name].dtype == np.int32 and back[name].shape == (18, 2)
        np.testing.assert_array_equal(back[name], kp)
    assert path.read_text().splitlines()[0] == "name:keypoints_y:keypoints_x"
    assert [p.name for p in path.parent.iterdir()] == ["ann.csv"]  # no temporary left behind


def test_reads_patn_spelling_with_spaces(tmp_path):
    path = write(tmp_path, f"name:keypoints_y:keypoints_x\n0002_c1s1_000451_03.jpg: {YS}: {XS}\r\n\n")
    kp = read_annotations(path)["0002_c1s1_000451_03.jpg"]
    assert kp[:, 0].tolist() == YS and kp[:, 1].tolist() == XS


GOOD = f"a.jpg:{json.dumps(YS)}:{json.dumps(XS)}"
BAD_ROWS = {
    "fields": ("a.jpg:[1, 2]", "fields"),
    "json": (f"a.jpg:[1, 2:{json.dumps(XS)}", "not valid JSON"),
    "not-a-list": (f"a.jpg:5:{json.dumps(XS)}", "not a list"),
    "count": (f"a.jpg:{json.dumps(YS[:17])}:{json.dumps(XS)}", "17 values"),
    "float": (f"a.jpg:{json.dumps(YS)}:{json.dumps(XS[:17] + [3.5])}", "non-integer"),
    "string": (f"a.jpg:{json.dumps(YS[:17] + ['3'])}:{json.dumps(XS)}", "non-integer"),
    "bool": (f"a.jpg:{json.dumps(YS[:17] + [True])}:{json.dumps(XS)}", "non-integer"),
    "below": (f"a.jpg:{json.dumps(YS[:17] + [-2])}:{json.dumps(XS)}", "below -1"),
    "empty-name": (f":{json.dumps(YS)}:{json.dumps(XS)}", "name is empty"),
    "duplicate": (GOOD.replace("a.jpg", "b.jpg"), "already annotated on line 2"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_malformed_annotation_row_names_file_and_line(tmp_path, case):
    row, message = BAD_ROWS[case]
    path = write(tmp_path, f"name:keypoints_y:keypoints_x\n{GOOD.replace('a.jpg', 'b.jpg')}\n\n{row}\n")
    with pytest.raises(FormatError, match=message) as info:
        read_annotations(path)
    assert info.value.line == 4
    assert f"{path}, line 4" in str(info.value)


@pytest.mark.parametrize("text", ["", "name,keypoints_y,keypoints_x\n", f"{GOOD}\n"])
def test_wrong_header(tmp_path, text):
    with pytest.raises(FormatError, match="line 1: expected the header") as info:
        read_annotations(write(tmp_path, text))
    assert isinstance(info.value, ValueError)


def test_missing_files_say_what_makes_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"annotation file .*nope.csv does not exist.*pose estimator"):
        read_annotations(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match=r"pairs file .*nope.csv does not exist.*build_pairs"):
        read_pairs(tmp_path / "nope.csv")


def test_write_annotations_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="integer"):
        write_annotations(tmp_path / "a.csv", {"a.jpg": np.zeros((18, 2), dtype=np.float32)})
    with pytest.raises(ValueError, match="':'"):
        write_annotations(tmp_path / "a.csv", {"a:b.jpg": np.zeros((18, 2), dtype=np.int32)})
    with pytest.raises(ValueError, match="below -1"):
        write_annotations(tmp_path / "a.csv", {"a.jpg": np.full((18, 2), -3)})
    assert not list(tmp_path.iterdir())


def test_pairs_round_trip_and_errors(tmp_path):
    pairs = pd.DataFrame({"from": ["a.jpg", "b.jpg", "a.jpg"], "to": ["b.jpg", "a.jpg", "c.jpg"]})
    path = tmp_path / "pairs.csv"
    write_pairs(path, pairs)
    assert path.read_text() == "from,to\na.jpg,b.jpg\nb.jpg,a.jpg\na.jpg,c.jpg\n"
    back = read_pairs(path)
    assert back.columns.tolist() == ["from", "to"]
    pd.testing.assert_frame_equal(back, pairs.astype(object))
    with pytest.raises(FormatError, match=r"line 4: 'c.jpg' has no annotation \(1 such names") as info:
        read_pairs(path, known_names={"a.jpg": 0, "b.jpg": 0})
    assert info.value.line == 4
    assert len(read_pairs(path, known_names={"a.jpg", "b.jpg", "c.jpg"})) == 3

    with pytest.raises(FormatError, match="line 1: expected the header 'from,to'"):
        read_pairs(write(tmp_path, "to,from\na,b\n", "p1.csv"))
    for bad in ("a.jpg,b.jpg,c.jpg", "a.jpg", "a.jpg,"):
        with pytest.raises(FormatError, match="line 3: expected two non-empty"):
            read_pairs(write(tmp_path, f"from,to\na,b\n{bad}\n", "p2.csv"))
    with pytest.raises(ValueError, match="columns"):
        write_pairs(tmp_path / "p3.csv", pd.DataFrame({"a": [1]}))


def test_identity_of():
    assert identity_of("0002_c1s1_000451_03.jpg") == "0002"
    assert identity_of("-1_c3s2_000100_01.jpg") == "-1"
    assert identity_of("noid.jpg") == "noid.jpg"


def hand_made_table() -> dict[str, np.ndarray]:
    no_hip = full_pose()
    no_hip[L_HIP] = MISSING
    return {
        "0001_c1_a.jpg": full_pose(0),
        "0001_c2_b.jpg": full_pose(1),
        "0001_c3_c.jpg": no_hip,
        "0002_c1_a.jpg": full_pose(2),
        "0002_c2_b.jpg": full_pose(3),
        "-1_c1_a.jpg": full_pose(),
        "-1_c2_b.jpg": full_pose(),
        "0000_c1_a.jpg": full_pose(),
        "0000_c2_b.jpg": full_pose(),
        "0003_c1_a.jpg": full_pose(),  # alone: no pair
    }


def test_build_pairs_hand_made_table():
    pairs = build_pairs(hand_made_table())
    assert list(pairs.itertuples(index=False, name=None)) == [
        ("0001_c1_a.jpg", "0001_c2_b.jpg"),
        ("0001_c2_b.jpg", "0001_c1_a.jpg"),
        ("0002_c1_a.jpg", "0002_c2_b.jpg"),
        ("0002_c2_b.jpg", "0002_c1_a.jpg"),
    ]
    assert pairs.columns.tolist() == ["from", "to"]


def market_like_table(n_ids: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        f"{i:04d}_c{c}s1_{k:06d}_00.jpg": full_pose()
        for i in range(1, n_ids + 1)
        for k, c in enumerate(rng.integers(1, 7, rng.integers(2, 9)))
    }


def test_build_pairs_counts_caps_and_sampling():
    table = market_like_table()
    sizes = pd.Series([identity_of(n) for n in table]).value_counts()
    everything = build_pairs(table)
    assert len(everything) == int((sizes * (sizes - 1)).sum())
    assert (everything["from"] != everything["to"]).all()
    assert (everything["from"].map(identity_of) == everything["to"].map(identity_of)).all()
    assert not everything.duplicated().any()
    assert everything.equals(everything.sort_values(["from", "to"]).reset_index(drop=True))

    capped = build_pairs(table, max_per_identity=5, seed=3)
    per_id = capped["from"].map(identity_of).value_counts()
    assert (per_id == np.minimum(5, sizes * (sizes - 1))[per_id.index]).all()
    assert capped.merge(everything, how="left", indicator=True)["_merge"].eq("both").all()
    assert capped.equals(build_pairs(table, max_per_identity=5, seed=3))
    assert not capped.equals(build_pairs(table, max_per_identity=5, seed=4))

    sampled = build_pairs(table, n=50, max_per_identity=10, seed=7)
    assert len(sampled) == 50 and not sampled.duplicated().any()
    assert sampled["from"].map(identity_of).value_counts().max() <= 10
    assert sampled.equals(build_pairs(table, n=50, max_per_identity=10, seed=7))
    assert sampled.equals(sampled.sort_values(["from", "to"]).reset_index(drop=True))
    assert build_pairs(table, n=10**6).equals(everything)
    assert len(build_pairs(table, n=0)) == 0
    assert len(build_pairs({})) == 0


def test_built_pairs_round_trip_through_csv(tmp_path):
    table = market_like_table(5)
    write_annotations(tmp_path / "ann.csv", table)
    pairs = build_pairs(read_annotations(tmp_path / "ann.csv"), n=20, seed=1)
    write_pairs(tmp_path / "pairs.csv", pairs)
    pd.testing.assert_frame_equal(read_pairs(tmp_path / "pairs.csv", known_names=table), pairs)
