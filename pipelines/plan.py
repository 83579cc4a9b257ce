"""What one run makes of the methods table (``pipelines.methods``): which methods fill missing images
(none at p = 1), which generators it trains or loads, each method's training set and re-ID training,
and whether it reads the auxiliary identities. Each is decided here once, for the stage modules that
declare their instances, the report and the checks."""

from __future__ import annotations

from pipelines import methods
from pipelines.config import PipelineConfig
from pipelines.stage_names import PREPARE_DATA, REDUCED, StageName, merged, reid_evaluation, reid_training


def unavailable(cfg: PipelineConfig) -> list[str]:
    """The configured methods that cannot run on the configured dataset."""
    table = methods.TABLE
    return [m for m in cfg.methods if table[m].datasets and cfg.data.dataset not in table[m].datasets]


def keeps_everything(cfg: PipelineConfig) -> bool:
    """At p = 1 the kept set is every image: nothing is missing, nothing is filled."""
    return cfg.portion >= 1.0


def fills(cfg: PipelineConfig, method: str) -> bool:
    """Whether ``method`` adds images to the kept ones in this run."""
    return bool(methods.TABLE[method].filler) and not keeps_everything(cfg)


def generators(cfg: PipelineConfig) -> list[str]:
    """The generators the run trains (or loads): those that synthesise, or that are evaluated."""
    table = methods.TABLE
    wanted = {table[m].generator for m in cfg.methods
              if table[m].generator and (fills(cfg, m) or cfg.evaluate_generator)}
    return [g for g in methods.GENERATORS if g in wanted]


def filling(cfg: PipelineConfig) -> list[methods.Method]:
    """The methods whose images are made in this run, in the table's order."""
    return [m for m in methods.TABLE.values() if m.name in cfg.methods and fills(cfg, m.name)]


def filled_by(cfg: PipelineConfig, filler: str) -> list[methods.Method]:
    """The methods of this run whose images stage module ``filler`` makes."""
    return [m for m in filling(cfg) if m.filler == filler]


def training_set(cfg: PipelineConfig, method: str) -> StageName:
    """The stage whose result ``root`` is ``method``'s re-ID training folder."""
    m = methods.TABLE[method]
    if m.full or keeps_everything(cfg):  # the kept set is then the full set: its training serves
        return PREPARE_DATA
    return merged(m) if fills(cfg, method) else REDUCED


def trainings(cfg: PipelineConfig) -> dict[str, StageName]:
    """Each method's re-ID training stage. Methods on the same training set share one (at p = 1 every
    method trains on the full set, which the kept images then are): it is named after the first of them."""
    owner: dict[str, str] = {}
    for method in cfg.methods:
        owner.setdefault(training_set(cfg, method), method)
    return {m: reid_training(owner[training_set(cfg, m)]) for m in cfg.methods}


def evaluation(cfg: PipelineConfig, method: str) -> StageName:
    """The evaluation stage whose result is ``method``'s."""
    return reid_evaluation(trainings(cfg)[method])


def pretrains(cfg: PipelineConfig) -> bool:
    """Whether the re-ID models start from the trunk pretrained on the auxiliary identities."""
    return cfg.reid.model.weights == "auxiliary"


def reads_auxiliary(cfg: PipelineConfig) -> bool:
    """Whether any stage of the run reads the auxiliary identities: the pretraining, or a generator
    the run trains on them."""
    sections = [getattr(cfg, methods.GENERATORS[g].section) for g in generators(cfg)]
    return pretrains(cfg) or any(s.train_on == "auxiliary" and not s.checkpoint for s in sections)
