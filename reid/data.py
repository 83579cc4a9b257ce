"""Re-ID data through torchreid's machinery: a manifest-fed ``ImageDataset``, transforms, samplers.

A *manifest* is a CSV with one row per image: ``path``, ``identity`` (int; -1 junk, 0 distractor),
``camera`` (1..6) and ``split`` (train / query / gallery), the columns of
:func:`reid.market_index.index_market`. Any Market-layout folder (full, reduced or augmented) is
indexed once into a manifest; the torchreid dataset is then built from that file only. torchreid
instantiates a dataset more than once (one per mode), so a reduced or augmented split must come
from a file, never from a random draw inside the dataset.

torchreid 0.2.5 from PyPI (imported through ``reid._torchreid``, which handles its import quirks) has
more quirks handled here:

- its ``read_image`` retries an unreadable file forever; we read images ourselves and raise.
- its ``Dataset`` indexes ``query[0]`` / ``gallery[0]``, so it cannot hold an empty split; a
  training-only folder gets placeholders that are removed after construction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from PIL import Image
from torch.utils.data import DataLoader, Sampler
from torchvision import transforms as T

from reid._torchreid import torchreid_module
from reid.market_index import MarketLayoutError, index_market
from reid.train_config import SAMPLERS
from runtime.atomic import atomic_path
from runtime.device import loader_context
from runtime.images import IMAGENET_MEAN, IMAGENET_STD
from runtime.portable import current_root, relative

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("path", "identity", "camera", "split")

ImageDataset = torchreid_module("torchreid.reid.data").ImageDataset


# ----------------------------------------------------------------------------- manifests

def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read and check a manifest CSV (columns path, identity, camera, split; extra columns kept)."""
    p = Path(path)
    if not p.is_file():
        raise MarketLayoutError(f"manifest {p} does not exist")
    table = pd.read_csv(p, dtype={"identity_str": str})
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise MarketLayoutError(f"manifest {p} lacks the column(s) {', '.join(missing)}; a manifest needs "
                                f"{', '.join(MANIFEST_COLUMNS)} (the columns of reid.market_index.index_market)")
    bad_split = sorted(set(table["split"]) - {"train", "query", "gallery"})
    if bad_split:
        raise MarketLayoutError(f"manifest {p}: unknown split value(s) {bad_split}; use train, query, gallery")
    if not table["camera"].between(1, 99).all():
        raise MarketLayoutError(f"manifest {p}: camera numbers must be 1-based (Market: 1..6)")
    # Relative image paths are relative to the manifest's folder.
    table["path"] = [str(q if Path(q).is_absolute() else (p.parent / q)) for q in table["path"].astype(str)]
    return table


def write_manifest(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a manifest atomically; inside a pipeline's run folder its image paths are written relative
    to the manifest's folder (``runtime.portable``), as ``read_manifest`` reads them."""
    p = Path(path)
    if "path" in table.columns and current_root() is not None:
        table = table.assign(path=relative([str(q) for q in table["path"]], p.parent))
    with atomic_path(p) as tmp:
        table.to_csv(tmp, index=False)
    return p


def market_manifest(root: str | Path, splits: Sequence[str], out: str | Path) -> pd.DataFrame:
    """Index a Market-layout folder (``index_market``) and write the manifest to ``out``."""
    table = index_market(root, splits=tuple(splits), progress=False)
    write_manifest(table, out)
    return table


def training_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The training rows usable as classes: distractor (0) and junk (-1) images are dropped, with a
    warning, since they are not identities."""
    train = table[table["split"] == "train"]
    bad = train[train["identity"] <= 0]
    if len(bad):
        log.warning("dropping %d training image(s) labelled distractor (0) or junk (-1), e.g. %s",
                    len(bad), bad["path"].iloc[0])
        train = train[train["identity"] > 0]
    return train.sort_values("path", kind="stable").reset_index(drop=True)


def identity_labels(train: pd.DataFrame) -> list[int]:
    """Sorted training identities; identity ``ids[k]`` gets class label ``k``."""
    return sorted(int(i) for i in train["identity"].unique())


# ----------------------------------------------------------------------------- images

def read_rgb(path: str) -> Image.Image:
    """Open an image as RGB; an unreadable file is an error naming it (torchreid retries forever)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise OSError(f"cannot read image {path} ({type(exc).__name__}: {exc}); re-extract or regenerate it, "
                      "or remove it from the dataset") from exc


def train_transform(image_size: Sequence[int], pad: int = 10, flip: bool = True,
                    erasing_p: float = 0.0, color_jitter: float = 0.0) -> T.Compose:
    """layumi's training transform: bicubic resize, pad + random crop, horizontal flip, ImageNet
    normalisation; optional random erasing (torchreid's, zero fill as in layumi's baseline) and colour
    jitter (strength s: brightness, contrast, saturation s, hue s / 4; before the tensor conversion).

    torchreid's own ``build_transforms`` resizes bilinearly and crops by enlarging 1.125x, so the
    baseline's transform is composed here from torchvision parts.
    """
    h, w = int(image_size[0]), int(image_size[1])
    steps: list[Any] = [T.Resize((h, w), interpolation=T.InterpolationMode.BICUBIC)]
    if pad > 0:
        steps += [T.Pad(pad, padding_mode="constant"), T.RandomCrop((h, w))]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if color_jitter > 0:
        s = float(color_jitter)
        steps.append(T.ColorJitter(brightness=s, contrast=s, saturation=s, hue=s / 4))
    steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if erasing_p > 0:
        erasing = torchreid_module("torchreid.reid.data.transforms").RandomErasing
        steps.append(erasing(probability=erasing_p, mean=[0.0, 0.0, 0.0]))
    return T.Compose(steps)


def test_transform(image_size: Sequence[int]) -> T.Compose:
    """Bicubic resize and ImageNet normalisation (no randomness)."""
    h, w = int(image_size[0]), int(image_size[1])
    return T.Compose([T.Resize((h, w), interpolation=T.InterpolationMode.BICUBIC), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


# ----------------------------------------------------------------------------- the dataset

class ManifestDataset(ImageDataset):
    """torchreid ``ImageDataset`` read from a manifest CSV.

    ``train`` holds (path, label, camid) with labels 0..N-1 in sorted identity order and 0-based
    cameras; ``query`` / ``gallery`` keep the original identities (0 distractor, -1 junk), as
    torchreid's evaluation needs. The ``root`` argument is the manifest path, so the class can
    also be registered with ``torchreid.data.register_image_dataset`` for its data manager.
    ``identities[k]`` is the identity of class ``k``.
    """

    def __init__(self, root: str = "", manifest: str | Path | None = None, mode: str = "train",
                 transform: Any = None, verbose: bool = False, **kwargs: Any) -> None:
        source = Path(manifest if manifest is not None else root)
        table = read_manifest(source)
        train_table = training_rows(table)
        self.identities = identity_labels(train_table)
        label = {identity: k for k, identity in enumerate(self.identities)}
        train = [(p, label[int(i)], int(c) - 1) for p, i, c in
                 zip(train_table["path"], train_table["identity"], train_table["camera"])]

        def rows(split: str) -> list[tuple[str, int, int]]:
            part = table[table["split"] == split].sort_values("path", kind="stable")
            return [(p, int(i), int(c) - 1) for p, i, c in zip(part["path"], part["identity"], part["camera"])]

        query, gallery = rows("query"), rows("gallery")
        splits = {"train": train, "query": query, "gallery": gallery}
        if mode not in splits:
            raise ValueError(f"mode must be train, query or gallery, got {mode!r}")
        if not splits[mode]:
            raise MarketLayoutError(f"manifest {source} has no {mode} images")
        # torchreid's Dataset reads split[0] of every split: stand-ins for empty ones, removed below.
        stand_in = splits[mode][:1]
        kwargs.pop("combineall", None)
        super().__init__(train or stand_in, query or stand_in, gallery or stand_in, transform=transform,
                         mode=mode, combineall=False, verbose=False, **kwargs)
        self.train = [(*t, 0) for t in train]
        self.query = [(*t, 0) for t in query]
        self.gallery = [(*t, 0) for t in gallery]
        self.data = {"train": self.train, "query": self.query, "gallery": self.gallery}[mode]
        self.num_train_pids = len(self.identities)
        self.num_train_cams = self.get_num_cams(self.train) if self.train else 0
        self.manifest = str(source)
        if verbose:
            self.show_summary()

    def __getitem__(self, index: int) -> dict[str, Any]:
        path, pid, camid, dsetid = self.data[index]
        image = read_rgb(path)
        if self.transform is not None:
            image = self._transform_image(self.transform, self.k_tfm, image)
        return {"img": image, "pid": pid, "camid": camid, "impath": path, "dsetid": dsetid}


# ----------------------------------------------------------------------------- loaders

def train_sampler(dataset: Any, name: str, batch_size: int, num_instances: int,
                  generator: torch.Generator) -> Sampler:
    """A training sampler. ``RandomSampler`` gets ``generator`` (the data order then depends on it
    alone); torchreid's ``RandomIdentitySampler`` (N identities x K images) draws from Python's and
    NumPy's global generators, which the trainer seeds and checkpoints."""
    if name == "RandomSampler":
        return torch.utils.data.RandomSampler(dataset, generator=generator)
    if name == "RandomIdentitySampler":
        n_ids = len({item[1] for item in dataset.train})
        if batch_size % num_instances or batch_size // num_instances > n_ids:
            raise ValueError(f"RandomIdentitySampler needs batch_size ({batch_size}) divisible by "
                             f"data.num_instances ({num_instances}) and at most {n_ids} identities per batch")
        build = torchreid_module("torchreid.reid.data.sampler").build_train_sampler
        return build(dataset.train, "RandomIdentitySampler", batch_size=batch_size, num_instances=num_instances)
    raise ValueError(f"unknown sampler {name!r}; use one of {', '.join(SAMPLERS)}")


def eval_loader(manifest: str | Path, mode: str, image_size: Sequence[int], batch_size: int,
                num_workers: int, pin_memory: bool = False) -> DataLoader:
    """An in-order loader of one test split; it leaves the global RNG untouched (its own generator
    seeds the workers), so evaluating inside a training process does not change the training."""
    dataset = ManifestDataset(manifest, mode=mode, transform=test_transform(image_size))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=pin_memory, drop_last=False, generator=torch.Generator(),
                      multiprocessing_context=loader_context(num_workers))


