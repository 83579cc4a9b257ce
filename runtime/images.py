"""Image files and the ImageNet normalisation, shared by the pose estimator, the Market-1501 index,
the generator metrics and the re-ID transforms."""

from __future__ import annotations

import os
from pathlib import Path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
# torchvision's ImageNet statistics: what VGG-19 (perceptual loss) and ResNet (re-ID) were trained on.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def is_image_file(path: str | os.PathLike) -> bool:
    """A regular file whose extension (any case) is one of IMAGE_EXTENSIONS."""
    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder``, sorted by name (the folder must exist)."""
    return sorted((p for p in Path(folder).iterdir() if is_image_file(p)), key=lambda p: p.name)
