"""How a released generator is named where a checkpoint path is accepted: ``released:<name>`` is the
release ``releases/<name>/``; a plain ``released`` is the default release of the architecture (so a
config says "the committed weights" without repeating their name). Anything else is a path.

Resolving a name always verifies the weights against ``release.json`` first (``runtime.releases``).
"""

from __future__ import annotations

import os

from runtime.releases import RELEASED_PREFIX, Release, ReleaseError, check_name, verify_release

RELEASED = "released"
PREFIX = RELEASED_PREFIX
# The release a plain ``released`` means, per generator architecture (the CPU recipes on SynthMarket's
# auxiliary identities: pona_model/presets/synth.yaml, patn-synth.yaml).
DEFAULT_RELEASES: dict[str, str] = {"pona": "pona-synth", "patn": "patn-synth"}


def release_name(spec: str | os.PathLike, arch: str = "pona") -> str | None:
    """The release ``spec`` names (``released`` -> the ``arch``'s default), or None for a path."""
    text = str(spec)
    if text == RELEASED:
        if arch not in DEFAULT_RELEASES:
            raise ReleaseError(f"no default release for generator arch {arch!r}; name one: released:<name>")
        return DEFAULT_RELEASES[arch]
    if text.startswith(PREFIX):
        name = text[len(PREFIX):]
        if not name:
            raise ReleaseError(f"{text!r} names no release; write released:<name> (e.g. released:pona-synth) "
                               "or released for the architecture's default")
        return check_name(name)
    return None


def is_release(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` is a release spelling rather than a path (no file system access)."""
    text = str(spec)
    return text == RELEASED or text.startswith(PREFIX)


def resolve_release(spec: str | os.PathLike, arch: str = "pona",
                    root: str | os.PathLike | None = None) -> Release | None:
    """The verified release ``spec`` names (ReleaseError, one line, if absent or altered), or None for a path."""
    name = release_name(spec, arch)
    return None if name is None else verify_release(name, root)
