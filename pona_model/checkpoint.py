"""The generator's checkpoint format tag; the checkpoint functions moved to ``runtime.checkpoint`` and
stay importable from here for code written against this name."""

from runtime.checkpoint import *  # noqa: F403
from runtime.checkpoint import (  # noqa: F401
    FORMAT_VERSION,
    CheckpointError,
    file_sha256,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    unreadable_reason,
)

GENERATOR_FORMAT = "pona-generator-training"
# A released generator (``python -m pona_model.release``): its weights only, in fp16, with the config
# and training facts that rebuild it; no discriminators, optimisers or RNG states.
GENERATOR_RELEASE_FORMAT = "pona-generator-release"
