"""The format tags of the generator's checkpoint files (the ``format`` that ``runtime.checkpoint``'s
``save_checkpoint`` writes and ``load_checkpoint`` checks)."""

# A training checkpoint (``python -m pona_model.train``): the generator, both discriminators, the three
# optimisers, the config and every RNG state, enough to resume.
GENERATOR_FORMAT = "pona-generator-training"
# A released generator (``python -m pona_model.release``): its weights only, in fp16, with the config
# and training facts that rebuild it; no discriminators, optimisers or RNG states.
GENERATOR_RELEASE_FORMAT = "pona-generator-release"
