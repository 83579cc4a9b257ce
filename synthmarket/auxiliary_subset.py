"""Which of the auxiliary people's images a re-ID start is pretrained on.

A start trained on *every* image of the auxiliary people already knows every invariance the
experiment's test asks for (cameras, views, poses), so the experiment's own training images have
nothing left to teach and keeping 20 % of them costs nothing. Training on a subset that lacks one
invariance makes a start whose fine-tune needs exactly what the missing images show
(docs/reid-protocol.md, "A regime in which missing data costs mAP"):

- ``all``: every image (re-ID on the auxiliary identities, the pipeline's historical start);
- ``one_view``: each person's images in their most frequent view only, from every camera that shows
  it - cameras, light and backgrounds change, the view never (the regime's start);
- ``one_track``: each person's images of their first camera only - one walk: the pose changes,
  camera, view and background never;

each capped at ``per_id`` images per person (the first by Market name; 0 = no cap).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SUBSETS = ("all", "one_view", "one_track")
# the manifest columns a subset reads (one_view also needs the view SynthMarket records per image)
NEEDED = ("split", "file", "name", "identity", "camera")


def select_images(table: pd.DataFrame, images: str = "all", per_id: int = 0) -> pd.DataFrame:
    """The rows of an auxiliary manifest's train split that the subset keeps, in Market-name order."""
    if images not in SUBSETS:
        raise ValueError(f"auxiliary subset {images!r}: choose one of {', '.join(SUBSETS)}")
    needed = [*NEEDED, "view"] if images == "one_view" else list(NEEDED)
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"the auxiliary manifest lacks column(s) {', '.join(missing)} needed by the {images} subset; "
                         "render the auxiliary people with python -m synthmarket.auxiliary")
    table = table[table["split"] == "train"].sort_values("name")
    if images == "one_track":
        table = table[table["camera"] == table.groupby("identity")["camera"].transform("first")]
    elif images == "one_view":
        # ties between views broken by the view's name, so the subset does not depend on row order
        modal = table.groupby("identity")["view"].agg(lambda v: v.value_counts().sort_index().idxmax())
        table = table[table["view"] == table["identity"].map(modal)]
    if per_id > 0:
        table = table.groupby("identity", sort=True).head(per_id)
    return table.sort_values(["identity", "name"]).reset_index(drop=True)


def subset_manifest(aux_root: str | Path, images: str = "all", per_id: int = 0) -> pd.DataFrame:
    """The subset of ``aux_root``'s ``manifest.csv`` as a re-ID training manifest (absolute ``path``,
    ``identity``, ``camera``, ``split``), readable from any folder (``reid.data.manifest``)."""
    root = Path(aux_root).resolve()
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no manifest; the {images} subset needs SynthMarket's auxiliary "
                                "manifest (python -m synthmarket.auxiliary)")
    pick = select_images(pd.read_csv(manifest), images, per_id)
    return pd.DataFrame({"path": [str(root / f) for f in pick["file"]], "identity": pick["identity"].to_numpy(),
                         "camera": pick["camera"].to_numpy(), "split": "train"})
