"""The six-pose sheet (``pona_model.evaluation.six_poses``, ``bench/six_pose_sheet.py``) on a tiny rendered
SynthMarket and a 2-iteration generator: who is chosen, what each cell holds, the layout, the JSON, and
the oracle column only where the dataset has a renderer."""

from __future__ import annotations

import hashlib
import json
import runpy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pona_model.comparison import enlarge
from pona_model.evaluation.six_poses import (
    BAR,
    CELL_GAP,
    GROUP_GAP,
    HEADER,
    choose_rows,
    compose,
    generate_rows,
)
from pona_model.inference import load_generator
from pona_model.metrics.images import resize_rgb
from poseformats.annotations import read_annotations, read_pairs
from synthmarket.config import SynthMarketConfig
from synthmarket.dataset import generate_synthmarket
from synthmarket.oracle import RENDERER, Oracle

ROOT = Path(__file__).resolve().parents[1]
TINY = SynthMarketConfig(n_train_ids=1, n_test_ids=3, min_cameras=2, max_cameras=3, max_images_per_camera=2,
                         n_distractors=0, n_junk=0, test_pairs=12, height=64, width=32, supersample=1, workers=1,
                         progress=False)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sheet") / "synthmarket"
    generate_synthmarket(root, TINY)
    return root


def _sheet_main():
    return runpy.run_path(str(ROOT / "bench" / "six_pose_sheet.py"), run_name="six_pose_sheet")["main"]


def test_rows_are_different_people_with_the_most_pairs_first(synth):
    annotations = read_annotations(synth / "market-annotation-test.csv")
    pairs = read_pairs(synth / "market-pairs-test.csv", known_names=annotations)
    rows = choose_rows(pairs, annotations, people=3, poses=4)
    identities = [r.condition.split("_")[0] for r in rows]
    assert len(set(identities)) == len(rows) == 3  # the three test people
    counts = [pairs["to"][pairs["from"] == r.condition].nunique() for r in rows]
    assert counts == sorted(counts, reverse=True)
    for row in rows:
        in_pairs = list(dict.fromkeys(pairs["to"][pairs["from"] == row.condition]))
        assert row.targets[:len(in_pairs)] == in_pairs[:4]  # its own test pairs first, then same-person images
        assert row.condition not in row.targets and len(row.targets) <= 4
        assert {t.split("_")[0] for t in row.targets} == {row.condition.split("_")[0]}


def test_cells_hold_the_target_the_generated_and_the_oracle_image(synth, trained):
    model = load_generator(trained, "cpu")  # a 32 x 16 generator on 64 x 32 images: everything at 32 x 16
    annotations = read_annotations(synth / "market-annotation-test.csv")
    rows = choose_rows(read_pairs(synth / "market-pairs-test.csv", known_names=annotations), annotations, 2, 2)
    oracle = Oracle(synth, splits=("gallery",))
    generated = generate_rows(model, synth / "bounding_box_test", annotations, rows, oracle.image)
    h, w = model.image_size
    first = generated[0]
    assert first["condition"] == rows[0].condition
    assert (first["condition_image"] == resize_rgb(np.asarray(Image.open(synth / "bounding_box_test" /
                                                                          rows[0].condition)), (h, w))).all()
    cell = first["cells"][0]
    assert cell["target"] == rows[0].targets[0]
    assert (cell["oracle"] == resize_rgb(oracle.image(cell["target"], rows[0].condition), (h, w))).all()
    assert cell["generated"].shape == cell["target_image"].shape == (h, w, 3)
    assert cell["limb_region"] == ("left out" if cell["limb_margin"] is None else
                                   "holds" if cell["limb_margin"] > 0 else "fails")
    scale = 2
    sheet = compose(generated, scale=scale, footer="footer")
    ch, cw = h * scale, w * scale
    poses = max(len(r["cells"]) for r in generated)
    assert sheet.shape == (HEADER + len(generated) * (ch + BAR + CELL_GAP) + HEADER,
                           cw + poses * (GROUP_GAP + 3 * cw + 2 * CELL_GAP), 3)
    left = cw + GROUP_GAP  # row 0, first pose: target | generated | oracle
    for j, key in enumerate(("target_image", "generated", "oracle")):
        x = left + j * (cw + CELL_GAP)
        assert (sheet[HEADER:HEADER + ch, x:x + cw] == enlarge(cell[key], scale)).all(), key
    assert (sheet[HEADER:HEADER + ch, :cw] == enlarge(first["condition_image"], scale)).all()


def test_the_command_writes_the_sheet_and_its_json(synth, trained, pair_data, tmp_path, capsys):
    out = tmp_path / "docs" / "sheet.png"
    main = _sheet_main()
    assert main(["--checkpoint", str(trained), "--data", str(synth), "--out", str(out), "--people", "2",
                 "--poses", "3", "--scale", "2"]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["generator"]["sha256"] == hashlib.sha256(trained.read_bytes()).hexdigest()
    assert info["oracle"] == RENDERER and len(info["rows"]) == 2
    assert all(t["limb_region"] in ("holds", "fails", "left out") for r in info["rows"] for t in r["targets"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["people"] == 2 and printed["pairs"] == sum(len(r["targets"]) for r in info["rows"])
    poses = max(len(r["targets"]) for r in info["rows"])  # up to 3: as many as a person has other images
    assert np.asarray(Image.open(out)).shape[1] == 2 * 16 + poses * (GROUP_GAP + 3 * 2 * 16 + 2 * CELL_GAP)
    # A dataset without a renderer (plain Market layout): no oracle column, and the JSON says why.
    plain = tmp_path / "plain.png"
    assert main(["--checkpoint", str(trained), "--data", str(pair_data), "--split", "train", "--out", str(plain),
                 "--people", "2", "--poses", "2", "--scale", "2"]) == 0
    info = json.loads(plain.with_suffix(".json").read_text())
    assert info["oracle"].startswith("none:") and "synthmarket.json" in info["oracle"]
    poses = max(len(r["targets"]) for r in info["rows"])
    assert np.asarray(Image.open(plain)).shape[1] == 2 * 16 + poses * (GROUP_GAP + 2 * 2 * 16 + CELL_GAP)
