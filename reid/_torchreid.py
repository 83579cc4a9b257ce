"""The one door to torchreid: every module of ``reid`` that needs torchreid imports it through here.

torchreid 0.2.5 from PyPI is deep-person-reid 1.4.0 repackaged under ``torchreid.reid``
(``from torchreid.data import ImageDataset`` fails, ``torchreid.reid.data`` works); importing it needs
cv2, gdown, tensorboard and scipy, which it does not declare, and it warns that its compiled rank
evaluator is absent (the Python one is used; fine). This module imports only the standard library, so
config and model modules can depend on it without importing torchreid or each other.
"""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

_TORCHREID_DEPS = {"cv2": "opencv-python-headless", "gdown": "gdown", "tensorboard": "tensorboard",
                   "scipy": "scipy"}


def torchreid_module(name: str = "torchreid.reid") -> ModuleType:
    """Import a torchreid module (e.g. ``torchreid.reid.metrics.rank``) with the PyPI package's
    quirks handled: the Cython warning silenced, undeclared dependencies named with the fix."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Cython evaluation", category=UserWarning)
            return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == "torchreid":
            raise ModuleNotFoundError("torchreid is not installed: pip install torchreid==0.2.5") from exc
        package = _TORCHREID_DEPS.get(missing, missing)
        raise ModuleNotFoundError(
            f"torchreid needs the module {missing!r}, which it does not declare as a dependency: "
            f"pip install {package} (the project's pyproject.toml lists it)") from exc
