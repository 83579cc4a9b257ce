"""The lowest layer, below every other package (``poseformats``, ``synthmarket``, ``pona_model``, ``reid``,
``augment``, ``pipelines``): what every command of the project needs and none of them owns. It imports
none of them (a test checks it).

- ``config``: typed dataclass configs from presets, YAML files and ``key=value`` arguments; the one
  error path of every command; comparing a stored config with the current one.
- ``errors``: the exceptions several packages raise or catch.
- ``atomic``, ``jsonl_log``: files a later run trusts, written so a crash never leaves half of one.
- ``device``: device names, CPU threads, precision and autocast.
- ``checkpoint``: checkpoint files and the RNG state a resumed run restores.
- ``training``: the resumable-training engine every trainer runs on, and the settings they share.
- ``weights``: pretrained weight files that are never downloaded (a configured file or the torch hub cache).
- ``images``: which files are images, and the ImageNet normalisation.
- ``cpu_isa``: keeps oneDNN off AMX's bf16 kernels, on which bf16 re-ID training diverged (set on import).
"""

from runtime.cpu_isa import cap_amx

cap_amx()
