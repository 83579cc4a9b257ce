"""Every stage instance's name, built here and nowhere else: ``base`` or ``base[variant]``
(``train_reid[pona]``, ``synthesize[copy]``). A name is a string, so results, results.json and the
sweep's dask keys use it as they are, and it keeps its two parts for whoever needs them (the
evaluation of a re-ID training carries the training's variant). Names are what results.json and
the printed summary show; the cache folders are keyed by each stage module's kind and fingerprint."""

from __future__ import annotations

from pipelines import methods


class StageName(str):
    """``StageName("train_reid", "pona") == "train_reid[pona]"``."""

    base: str
    variant: str

    def __new__(cls, base: str, variant: str = "") -> StageName:
        name = super().__new__(cls, f"{base}[{variant}]" if variant else base)
        name.base, name.variant = base, variant
        return name

    def __getnewargs__(self) -> tuple[str, str]:  # pickled to dask workers as its parts
        return self.base, self.variant


PREPARE_DATA = StageName("prepare_data")  # also the training set of methods that use every real image
SUBSAMPLE = StageName("subsample")
PREPARE_AUXILIARY = StageName("prepare_auxiliary")
PRETRAIN_REID = StageName("pretrain_reid")
REDUCED = StageName("merge", "reduced")  # the kept images alone


def fill(method: methods.Method) -> StageName:
    """The stage that fills the missing images for ``method`` (``synthesize[copy]``)."""
    return StageName("synthesize", method.name if method.fill_variant is None else method.fill_variant)


def merged(method: methods.Method) -> StageName:
    """The training folder of kept + ``method``'s filled images (``merge[copy]``)."""
    return StageName("merge", method.name if method.merge_variant is None else method.merge_variant)


def trained_generator(generator: str) -> StageName:
    """``train_generator`` for PoNA, ``train_generator[patn]`` for PATN."""
    return StageName("train_generator", methods.GENERATORS[generator].variant)


def evaluated_generator(generator: str) -> StageName:
    return StageName("evaluate_generator", methods.GENERATORS[generator].variant)


def reid_training(owner: str) -> StageName:
    """The re-ID training on the training set of method ``owner`` (the first method on that set)."""
    return StageName("train_reid", owner)


def reid_evaluation(training: StageName) -> StageName:
    """The evaluation of re-ID training ``training``."""
    return StageName("evaluate_reid", training.variant)
