"""Market-1501 image names: ``0002_c1s1_000451_03.jpg`` is identity 2, camera 1, sequence 1, frame 451,
box 3. Every pose annotation and pair file is keyed by such names, the re-ID index reads them, and
SynthMarket writes them.

Identity 0 marks a distractor (a gallery image of nobody in the query set) and -1 a junk image (one
that must not count as a match or a miss); Market-1501 has cameras 1 to 6.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

N_CAMERAS = 6
DISTRACTOR_ID = 0
JUNK_ID = -1
KINDS = ("normal", "distractor", "junk")

# 0002_c1s1_000451_03.jpg; a suffix after the box (``_gen``, ``_fake01``) is allowed so generated
# images named after their source still parse.
NAME_PATTERN = re.compile(r"^(?P<identity>-1|\d+)_c(?P<camera>\d)s(?P<sequence>\d+)_(?P<frame>\d+)"
                          r"_(?P<box>\d+)(?:_[^.]*)?$")


@dataclass(frozen=True)
class MarketName:
    """The fields of one Market-1501 file name."""

    identity: int
    identity_str: str
    camera: int
    sequence: int
    frame: int
    box: int

    @property
    def kind(self) -> str:
        if self.identity == JUNK_ID:
            return "junk"
        return "distractor" if self.identity == DISTRACTOR_ID else "normal"


def parse_name(name: str) -> MarketName | None:
    """Parse ``0002_c1s1_000451_03.jpg``; None when the name is not Market style or the camera is
    outside 1..6."""
    match = NAME_PATTERN.match(Path(name).stem)
    if match is None:
        return None
    camera = int(match["camera"])
    if not 1 <= camera <= N_CAMERAS:
        return None
    return MarketName(identity=int(match["identity"]), identity_str=match["identity"], camera=camera,
                      sequence=int(match["sequence"]), frame=int(match["frame"]), box=int(match["box"]))
