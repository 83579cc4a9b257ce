"""Identity = appearance: skin, hair, garments, shoes and bag, drawn from a deliberately small palette.

The palette is short and skewed towards dark and neutral colours (as in a real street crowd), and
identities come in look-alike groups that share an outfit and differ in one or two attributes, so
that some identities are easy to confuse and re-identification is not trivial.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from synthmarket.skeleton import Body, sample_body

RGB = tuple[int, int, int]

# Named colours, most frequent first (the sampling weight falls with the index).
UPPER_COLOURS: tuple[tuple[str, RGB], ...] = (
    ("black", (28, 28, 32)), ("white", (232, 232, 226)), ("grey", (125, 125, 128)),
    ("navy", (32, 42, 84)), ("blue", (44, 92, 178)), ("red", (186, 34, 38)),
    ("lightblue", (140, 178, 218)), ("green", (44, 118, 62)), ("beige", (206, 186, 148)),
    ("yellow", (226, 196, 56)), ("pink", (226, 142, 170)), ("brown", (108, 70, 42)),
    ("purple", (96, 52, 128)), ("orange", (228, 118, 36)), ("teal", (32, 128, 128)),
    ("olive", (104, 108, 48)),
)  # fmt: skip
LOWER_COLOURS: tuple[tuple[str, RGB], ...] = (
    ("black", (26, 26, 30)), ("denim", (50, 70, 112)), ("darkgrey", (62, 62, 66)),
    ("lightdenim", (108, 138, 178)), ("khaki", (178, 160, 120)), ("grey", (128, 128, 132)),
    ("navy", (30, 36, 70)), ("brown", (92, 62, 40)), ("white", (226, 226, 220)),
    ("olive", (90, 94, 52)), ("red", (160, 36, 40)), ("beige", (200, 182, 146)),
)  # fmt: skip
SKIN_TONES: tuple[tuple[str, RGB], ...] = (
    ("light", (240, 204, 176)), ("fair", (226, 184, 148)), ("medium", (198, 150, 110)),
    ("tan", (160, 112, 76)), ("dark", (104, 70, 48)),
)  # fmt: skip
HAIR_COLOURS: tuple[tuple[str, RGB], ...] = (
    ("black", (22, 20, 20)), ("darkbrown", (52, 34, 24)), ("brown", (96, 62, 38)),
    ("blonde", (196, 164, 106)), ("grey", (150, 148, 146)), ("auburn", (128, 52, 30)),
)  # fmt: skip
SHOE_COLOURS: tuple[tuple[str, RGB], ...] = (
    ("black", (24, 24, 26)), ("white", (230, 230, 228)), ("grey", (120, 120, 124)),
    ("brown", (84, 54, 34)), ("blue", (40, 60, 120)), ("red", (170, 40, 40)),
)  # fmt: skip
BAG_COLOURS: tuple[tuple[str, RGB], ...] = (
    ("black", (26, 26, 28)), ("grey", (110, 110, 114)), ("navy", (34, 40, 78)),
    ("brown", (104, 68, 40)), ("red", (170, 40, 44)), ("beige", (196, 176, 140)),
)  # fmt: skip

PATTERNS: tuple[str, ...] = ("solid", "stripes", "checks", "print")
PATTERN_WEIGHTS = (0.55, 0.2, 0.12, 0.13)
SLEEVES: tuple[str, ...] = ("long", "short")
LOWER_TYPES: tuple[str, ...] = ("trousers", "shorts", "skirt")
LOWER_WEIGHTS = (0.68, 0.17, 0.15)
BAGS: tuple[str, ...] = ("none", "backpack", "shoulder", "handbag")
BAG_WEIGHTS = (0.5, 0.22, 0.17, 0.11)
# Two-colour layouts of a patterned jacket, each covering about half its area with either colour, so a
# colour histogram of any horizontal band of a person cannot tell them apart; only their layout can
# (SynthMarketConfig.lookalike_cue = "jacket_pattern").
JACKET_PATTERNS: tuple[str, ...] = ("hstripes", "vstripes", "checks", "diagonal")
# The attribute groups a look-alike may differ in (one "gene" = the fields redrawn together).
GENES: tuple[str, ...] = ("upper", "pattern", "sleeves", "lower", "shoes", "bag", "hair", "skin")


@dataclass(frozen=True)
class Appearance:
    """Everything that makes one identity look like itself, under any camera and pose."""

    skin: RGB
    skin_name: str
    hair: RGB
    hair_name: str
    hair_long: bool
    upper: RGB
    upper_name: str
    pattern: str
    upper2: RGB
    upper2_name: str
    pattern_scale: float  # stripe / check period, as a fraction of stature
    sleeves: str
    lower_type: str
    lower: RGB
    lower_name: str
    skirt_length: float  # fraction of the thigh + shin the skirt covers
    shoes: RGB
    shoes_name: str
    bag: str
    bag_colour: RGB
    bag_name: str
    bag_side: int  # 0 right, 1 left: the hip a shoulder bag hangs at, the hand holding a handbag
    body: Body
    # An open jacket over the top (None: no jacket): seen from behind and on the sleeves only, so a
    # jacket wearer's front and back differ (SynthMarketConfig.jacket_prob).
    jacket: RGB | None = None
    jacket_name: str = ""
    # A two-colour layout on the jacket (one of JACKET_PATTERNS; "solid": none), its second colour and its
    # period as a fraction of stature.
    jacket_pattern: str = "solid"
    jacket2: RGB | None = None
    jacket2_name: str = ""
    jacket_pattern_scale: float = 0.0

    def summary(self) -> str:
        """One line for the manifest, e.g. ``red stripes long-sleeve top / denim trousers / ...``."""
        top = f"{self.upper_name} {self.pattern}"
        if self.pattern != "solid":
            top += f"({self.upper2_name})"
        bag = "no bag" if self.bag == "none" else f"{self.bag_name} {self.bag}"
        hair = f"{self.hair_name} {'long' if self.hair_long else 'short'} hair"
        if self.jacket is not None:
            jacket = self.jacket_name
            if self.jacket_pattern != "solid":
                jacket += f" {self.jacket_pattern}({self.jacket2_name})"
            top = f"{jacket} open jacket over {top}"
        return (f"{top} {self.sleeves}-sleeve top / {self.lower_name} {self.lower_type} / "
                f"{self.shoes_name} shoes / {bag} / {hair} / {self.skin_name} skin")


def _weights(n: int) -> np.ndarray:
    w = 1.0 / (np.arange(n) + 2.5)
    return w / w.sum()


def _pick(rng: np.random.Generator, table: tuple[tuple[str, RGB], ...], limit: int | None,
          shade_jitter: float, exclude: str | None = None) -> tuple[str, RGB]:
    """A named colour (the first ``limit`` of the table, frequent ones likelier) with a small
    identity-specific shade offset, so two "red" shirts are alike but not equal."""
    entries = table[: max(1, limit)] if limit else table
    if exclude is not None and len(entries) > 1:
        entries = tuple(e for e in entries if e[0] != exclude)
    name, rgb = entries[int(rng.choice(len(entries), p=_weights(len(entries))))]
    offset = rng.normal(0.0, shade_jitter * 255.0, 3) + rng.normal(0.0, shade_jitter * 255.0)
    shaded = np.clip(np.asarray(rgb) + offset, 0, 255).round().astype(int)
    return name, (int(shaded[0]), int(shaded[1]), int(shaded[2]))


def _gene(name: str, rng: np.random.Generator, palette_size: int, shade_jitter: float,
          current: dict | None = None) -> dict:
    """Draw the fields of one gene."""
    p, j = palette_size, shade_jitter
    if name == "upper":
        n, c = _pick(rng, UPPER_COLOURS, p, j)
        return {"upper_name": n, "upper": c}
    if name == "pattern":
        upper_name = current["upper_name"] if current else None
        n, c = _pick(rng, UPPER_COLOURS, p, j, exclude=upper_name)
        pattern = PATTERNS[int(rng.choice(len(PATTERNS), p=PATTERN_WEIGHTS))]
        return {"pattern": pattern, "upper2_name": n, "upper2": c, "pattern_scale": rng.uniform(0.03, 0.06)}
    if name == "sleeves":
        return {"sleeves": SLEEVES[int(rng.random() < 0.35)]}
    if name == "lower":
        n, c = _pick(rng, LOWER_COLOURS, p, j)
        kind = LOWER_TYPES[int(rng.choice(len(LOWER_TYPES), p=LOWER_WEIGHTS))]
        return {"lower_type": kind, "lower_name": n, "lower": c, "skirt_length": rng.uniform(0.35, 0.75)}
    if name == "shoes":
        n, c = _pick(rng, SHOE_COLOURS, None, j)
        return {"shoes_name": n, "shoes": c}
    if name == "bag":
        n, c = _pick(rng, BAG_COLOURS, None, j)
        return {"bag": BAGS[int(rng.choice(len(BAGS), p=BAG_WEIGHTS))], "bag_name": n, "bag_colour": c,
                "bag_side": int(rng.integers(2))}
    if name == "hair":
        n, c = _pick(rng, HAIR_COLOURS, None, j)
        return {"hair_name": n, "hair": c, "hair_long": bool(rng.random() < 0.35)}
    if name == "skin":
        n, c = _pick(rng, SKIN_TONES, None, j * 0.5)
        return {"skin_name": n, "skin": c}
    raise ValueError(f"unknown gene {name!r}")


def sample_appearance(rng: np.random.Generator, palette_size: int = 10, shade_jitter: float = 0.05) -> Appearance:
    """A fresh identity."""
    fields: dict = {}
    for gene in GENES:
        fields.update(_gene(gene, rng, palette_size, shade_jitter, fields))
    return Appearance(body=sample_body(rng), **fields)


def with_jacket(a: Appearance, rng: np.random.Generator, prob: float, palette_size: int = 10,
                shade_jitter: float = 0.05) -> Appearance:
    """``a`` in an open jacket with chance ``prob``, its colour another named colour than the top's.

    Drawn from its own generator, after the outfit, so ``prob = 0`` leaves every identity (and every
    byte of the dataset) as it was."""
    if prob <= 0.0 or rng.random() >= prob:
        return a
    name, colour = _pick(rng, UPPER_COLOURS, palette_size, shade_jitter, exclude=a.upper_name)
    return dataclasses.replace(a, jacket=colour, jacket_name=name)


def jacket_pattern_lookalikes(base: Appearance, bodies: list[Body], rng: np.random.Generator, scale: float,
                              palette_size: int = 10, shade_jitter: float = 0.05) -> list[Appearance]:
    """Look-alikes that differ only in where their jacket's two colours go: the same outfit, jacket and
    colours to the shade, member ``k`` wearing layout ``JACKET_PATTERNS[k]``, each with its own body.

    Their colour histograms match (each layout is half one colour, half the other), so telling them
    apart takes the layout, which is seen on the back and sleeves, not from the front."""
    if base.jacket is None:
        raise ValueError("jacket-pattern look-alikes need a jacket on the base outfit")
    if len(bodies) > len(JACKET_PATTERNS):
        raise ValueError(f"at most {len(JACKET_PATTERNS)} jacket-pattern look-alikes, got {len(bodies)}")
    name, colour = _pick(rng, UPPER_COLOURS, palette_size, shade_jitter, exclude=base.jacket_name)
    return [dataclasses.replace(base, body=body, jacket_pattern=pattern, jacket2=colour, jacket2_name=name,
                                jacket_pattern_scale=scale)
            for body, pattern in zip(bodies, JACKET_PATTERNS, strict=False)]


def _signature(a: Appearance, gene: str) -> tuple:
    """What a gene looks like, by name (shade offsets do not count as a difference)."""
    keys = {
        "upper": ("upper_name",), "pattern": ("pattern", "upper2_name"), "sleeves": ("sleeves",),
        "lower": ("lower_type", "lower_name"), "shoes": ("shoes_name",), "bag": ("bag", "bag_name"),
        "hair": ("hair_name", "hair_long"), "skin": ("skin_name",),
    }[gene]
    values = tuple(getattr(a, k) for k in keys)
    if gene == "pattern" and a.pattern == "solid":
        return ("solid",)
    if gene == "bag" and a.bag == "none":
        return ("none",)
    return values


def mutate(base: Appearance, rng: np.random.Generator, n_changes: int = 1, palette_size: int = 10,
           shade_jitter: float = 0.05) -> Appearance:
    """A look-alike of ``base``: the same outfit with ``n_changes`` visibly different genes and a
    body of its own."""
    genes = [GENES[i] for i in rng.permutation(len(GENES))[: max(0, n_changes)]]
    fields = dataclasses.asdict(base)
    fields.pop("body")
    for gene in genes:
        for _ in range(20):
            drawn = _gene(gene, rng, palette_size, shade_jitter, fields)
            trial = dataclasses.replace(base, **drawn)
            if _signature(trial, gene) != _signature(base, gene):
                break
        fields.update(drawn)
    return Appearance(body=sample_body(rng), **fields)


def lookalike_groups(identities: list[int], group_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Split identities at random into groups of ``group_size`` (the last may be smaller)."""
    order = [identities[i] for i in rng.permutation(len(identities))]
    size = max(1, group_size)
    return [sorted(order[i: i + size]) for i in range(0, len(order), size)]
