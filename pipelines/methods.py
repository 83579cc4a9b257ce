"""The experiment's methods (Table VI's rows and the controls) and the training set each one's re-ID
model is trained on. The stage modules read this table to declare their instances, so a new method
is a row here (plus, if it makes images, one stage module), not new branches in the graph."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.config import METHODS, PipelineConfig

REDUCED = "merge[reduced]"
FULL = "prepare_data"


@dataclass(frozen=True)
class Method:
    """``generator``: the config section of the generator it synthesises with (``pona`` reads
    ``generator``, ``patn`` reads ``patn``); ``fills``: the stage that fills the missing images;
    ``merged``: the stage that merges them with the kept ones; ``full``: trains on every real image;
    ``datasets``: the only datasets it works on (empty: any), e.g. the oracle needs SynthMarket's renderer."""

    name: str
    generator: str = ""
    fills: str = ""
    merged: str = ""
    full: bool = False
    datasets: tuple[str, ...] = ()


TABLE: dict[str, Method] = {m.name: m for m in (
    Method("none"),
    Method("pona", generator="pona", fills="synthesize", merged="merge[augmented]"),
    Method("patn", generator="patn", fills="synthesize[patn]", merged="merge[patn]"),
    Method("copy", fills="synthesize[copy]", merged="merge[copy]"),
    Method("oracle", fills="synthesize[oracle]", merged="merge[oracle]", datasets=("synthmarket",)),
    Method("full", full=True),
)}
assert set(TABLE) == set(METHODS), "pipelines.config.METHODS and pipelines.methods.TABLE must name the same methods"


def unavailable(cfg: PipelineConfig) -> list[str]:
    """The configured methods that cannot run on the configured dataset."""
    return [m for m in cfg.methods if TABLE[m].datasets and cfg.data.dataset not in TABLE[m].datasets]


def generator_stage(generator: str, kind: str = "train_generator") -> str:
    """``train_generator`` for PoNA, ``train_generator[patn]`` for PATN (same for the other generator stages)."""
    return kind if generator == "pona" else f"{kind}[{generator}]"


def fills(cfg: PipelineConfig, method: str) -> bool:
    """Whether ``method`` adds images to the kept ones in this run (at p = 1 nothing is missing)."""
    return bool(TABLE[method].fills) and cfg.portion < 1.0


def generators(cfg: PipelineConfig) -> list[str]:
    """The generators the run trains (or loads): those that synthesise, or that are evaluated."""
    wanted = [TABLE[m].generator for m in cfg.methods if TABLE[m].generator and (fills(cfg, m) or cfg.evaluate_generator)]
    return [g for g in ("pona", "patn") if g in wanted]


def filling(cfg: PipelineConfig) -> list[Method]:
    """The methods whose images are made in this run, in a fixed order (PoNA, copy, PATN, oracle)."""
    return [TABLE[m] for m in ("pona", "copy", "patn", "oracle") if m in cfg.methods and fills(cfg, m)]


def training_set(cfg: PipelineConfig, method: str) -> str:
    """The stage whose result ``root`` is ``method``'s re-ID training folder."""
    m = TABLE[method]
    if m.full:
        return FULL
    return m.merged if fills(cfg, method) else REDUCED


def trainings(cfg: PipelineConfig) -> dict[str, str]:
    """Each method's re-ID training stage. Methods on the same training set share one (at p = 1 'pona'
    and 'copy' train on the reduced set, as 'none' does): it is named after the first of them."""
    owner: dict[str, str] = {}
    for method in cfg.methods:
        owner.setdefault(training_set(cfg, method), method)
    return {m: f"train_reid[{owner[training_set(cfg, m)]}]" for m in cfg.methods}


def evaluation(cfg: PipelineConfig, method: str) -> str:
    """The evaluation stage whose result is ``method``'s."""
    return trainings(cfg)[method].replace("train_reid", "evaluate_reid", 1)
