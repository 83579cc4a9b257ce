"""Stage: the auxiliary identities, people who are in neither the train nor the test split of the
experiment's dataset: what the re-ID trunk is pretrained on (``reid.model.weights=auxiliary``) and
what the generator can be trained on (``generator.train_on=auxiliary``). For SynthMarket they are
rendered once (``synthmarket.auxiliary``, same cameras, the dataset's images untouched); for real
data ``auxiliary.root`` names any Market-layout folder of other people.

Its fingerprint depends on the dataset's settings and ``auxiliary.n_ids`` only, never on the portion,
seed or method, so every run of a sweep shares one folder. Result: ``root`` (Market layout:
``bounding_box_train/``), ``annotations`` (PATN ``market-annotation-train.csv``), ``pairs``
(``market-pairs-train.csv``; empty where a real folder has none), ``n_ids``, ``n_images``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import plan
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_AUXILIARY
from pipelines.stages import Instance, StageOutput, StageSettings
from pipelines.stages.prepare_data import reopen_incomplete
from reid.market_index import index_market, resolve_root
from synthmarket.auxiliary import ANNOTATIONS, MARKER, PAIRS, generate_auxiliary
from synthmarket.config import SynthMarketConfig


@dataclass(frozen=True, kw_only=True)
class Rendered(StageSettings):
    """SynthMarket's auxiliary people: ``n_ids`` rendered with the dataset's settings."""

    dataset: str = "synthmarket"
    synthmarket: SynthMarketConfig
    n_ids: int


@dataclass(frozen=True, kw_only=True)
class Local(StageSettings):
    """A Market-layout folder of other people (``auxiliary.root``)."""

    dataset: str
    root: str


Settings = Rendered | Local


@dataclass(frozen=True, kw_only=True)
class Result(StageOutput):
    root: str
    annotations: str
    pairs: str
    n_ids: int
    n_images: int


def settings(cfg: PipelineConfig) -> Settings:
    if cfg.data.dataset == "synthmarket":
        return Rendered(synthmarket=cfg.data.synthmarket, n_ids=cfg.auxiliary.n_ids)
    return Local(dataset=cfg.data.dataset, root=str(resolve_root(cfg.auxiliary.root)))


def instances(cfg: PipelineConfig) -> list[Instance]:
    """Depends on the dataset's settings only: one folder shared by a whole sweep."""
    return [Instance(PREPARE_AUXILIARY, settings(cfg))] if plan.reads_auxiliary(cfg) else []


def check(cfg: PipelineConfig) -> None:
    """Real data needs a folder of other people, checked before any stage starts."""
    if not plan.reads_auxiliary(cfg) or cfg.data.dataset == "synthmarket":
        return
    if not cfg.auxiliary.root:
        raise ValueError("reid.model.weights=auxiliary and generator.train_on=auxiliary need auxiliary.root=PATH, a "
                         "Market-layout folder of people outside the experiment (or use reid.model.weights=imagenet)")
    table = index_market(cfg.auxiliary.root, splits=("train",), progress=False)
    ours = index_market(cfg.data.root, splits=("train", "query", "gallery"), progress=False)
    shared = set(table["name"]) & set(ours["name"])
    if shared:
        raise ValueError(f"auxiliary.root={cfg.auxiliary.root} shares {len(shared)} image names with data.root "
                         f"(e.g. {sorted(shared)[0]}): the auxiliary identities must be other people")


def run(folder: Path, settings: Settings, deps: dict[str, Any]) -> Result:
    if isinstance(settings, Rendered):
        root = folder / "dataset"
        sm = dataclasses.replace(settings.synthmarket, out=str(root))
        reopen_incomplete(root, MARKER, (ANNOTATIONS, PAIRS))
        manifest = generate_auxiliary(root, sm, settings.n_ids)
        return Result(root=str(root), annotations=str(root / ANNOTATIONS), pairs=str(root / PAIRS),
                      n_ids=int(manifest["identity"].nunique()), n_images=len(manifest))
    root = Path(settings.root)
    table = index_market(root, splits=("train",), progress=False)
    people = table[table["identity"] > 0]
    found = {name: str(root / name) if (root / name).is_file() else "" for name in (ANNOTATIONS, PAIRS)}
    return Result(root=str(root), annotations=found[ANNOTATIONS], pairs=found[PAIRS],
                  n_ids=int(people["identity"].nunique()), n_images=len(people))
