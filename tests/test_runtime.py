"""The shared runtime: below every other package (imports none of them), and its config comparison names
the nested key that differs."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

from runtime.config import config_differences, content, flatten, param
from runtime.errors import MissingWeightsError
from runtime.images import image_files
from runtime.weights import find_weights, read_weights

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"
ABOVE = ("poseformats", "synthmarket", "pona_model", "reid", "augment", "pipelines")


def imported_packages(path: Path) -> set[str]:
    """Top-level package names a module imports, including imports inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_runtime_imports_none_of_the_packages_above_it():
    modules = sorted(RUNTIME.glob("*.py"))
    assert len(modules) >= 8
    offending = {p.name: sorted(imported_packages(p) & set(ABOVE)) for p in modules}
    assert {name: found for name, found in offending.items() if found} == {}


def test_the_scan_sees_a_lazy_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from reid.model import build_model\n    import pipelines.run\n")
    assert imported_packages(module) == {"reid", "pipelines"}


def test_config_differences_name_the_nested_dotted_key():
    stored = {"out": "a", "generator": {"ngf": 64, "n_blocks": 3}, "schedule": {"lr": 2e-4}}
    mine = {"out": "b", "generator": {"ngf": 32, "n_blocks": 3}, "schedule": {"lr": 2e-4}}
    assert config_differences(mine, stored, run_keys=("out",)) == ["generator.ngf"]
    assert config_differences(mine, stored) == ["generator.ngf", "out"]
    assert config_differences(stored, stored, run_keys=("out",)) == []


def test_config_differences_name_a_key_only_one_side_has_even_when_none():
    assert config_differences({"a": {"b": None}}, {"a": {}}) == ["a.b"]
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}, skip=("e",)) == {"a.b": 1, "a.c.d": 2}


def test_find_weights_configured_file_must_exist_and_cache_is_searched(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(MissingWeightsError, match=r"VGG-19 weights file .*nope\.pth \(loss\.vgg_weights\) "
                                                   r"does not exist\. put it there"):
        find_weights(tmp_path / "nope.pth", ("x.pth",), "loss.vgg_weights", what="VGG-19", hint="put it there")
    assert find_weights(None, ("x.pth", "y.pth"), "k") is None
    cached = tmp_path / "hub" / "checkpoints" / "y.pth"
    cached.parent.mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.ones(1)}}, cached)
    assert find_weights("", ("x.pth", "y.pth"), "k") == cached
    assert list(read_weights(cached)) == ["w"]  # nested state_dict unwrapped
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    with pytest.raises(MissingWeightsError, match=r"bad\.pth cannot be read as a VGG-19 state dict"):
        read_weights(tmp_path / "bad.pth", "VGG-19 state dict")


def test_image_files_are_sorted_by_name_any_case_and_plain_files_only(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.txt", "d.jpeg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "e.png").mkdir()
    assert [p.name for p in image_files(tmp_path)] == ["a.jpg", "b.PNG", "d.jpeg"]


@dataclasses.dataclass
class _Settings:
    old: int = param(1, "a key the cached results were computed with")
    new: str = param("as-before", "a knob added later, whose default computes what was computed before", added=True)
    workers: int = param(0, "how many processes: never what is computed", run_only=True)


def test_an_added_key_stays_out_of_the_fingerprint_at_its_default_only():
    """Adding a knob must not redo finished stages: at its default the content is what it was before."""
    assert content(_Settings()) == {"old": 1}
    assert content(_Settings(workers=4)) == {"old": 1}
    assert content(_Settings(new="other")) == {"old": 1, "new": "other"}


def test_synthmarket_content_without_the_jacket_pattern_keys_at_their_defaults():
    """The regime's cached datasets and stages were recorded before lookalike_cue existed."""
    from synthmarket.config import SynthMarketConfig

    assert not {"lookalike_cue", "jacket_pattern_scale"} & set(SynthMarketConfig(jacket_prob=1.0).content())
    changed = SynthMarketConfig(jacket_prob=1.0, lookalike_cue="jacket_pattern", lookalike_group_size=4,
                                jacket_pattern_scale=0.16).content()
    assert (changed["lookalike_cue"], changed["jacket_pattern_scale"]) == ("jacket_pattern", 0.16)
