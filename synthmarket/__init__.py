"""SynthMarket: procedurally rendered pedestrians with exact 18-joint poses, in Market-1501 layout.

The stand-in for Market-1501 that every default run and test of the project uses (the real data
cannot be downloaded here). ``generate_synthmarket(out, SynthMarketConfig(...))`` writes a dataset
and returns its manifest; ``python -m synthmarket --help`` lists every setting.
"""

from synthmarket.config import SynthMarketConfig
from synthmarket.dataset import MARKET_PATTERN, ConfigMismatchError, generate_synthmarket, make_plan

__all__ = ["MARKET_PATTERN", "ConfigMismatchError", "SynthMarketConfig", "generate_synthmarket", "make_plan"]
