"""A stage's fingerprint holds the settings it passes on, so changing one re-runs the stage."""

from __future__ import annotations

from pipelines.config import load_pipeline_config
from pipelines.stages import evaluate_reid


def test_evaluate_reid_fingerprints_exactly_the_settings_it_passes(monkeypatch, tmp_path):
    seen: dict = {}
    monkeypatch.setattr(evaluate_reid, "evaluate_checkpoint", lambda *args, **kwargs: seen.update(kwargs) or {})
    for precision in ("fp32", "bf16"):
        cfg = load_pipeline_config("preset=smoke", f"reid.precision={precision}")
        seen.clear()
        evaluate_reid.run(tmp_path, cfg, "checkpoint.pt", "root")
        fingerprinted = evaluate_reid.inputs(cfg)
        passed = {k: v for k, v in seen.items() if k not in ("device", "out")}
        assert passed == fingerprinted and fingerprinted["precision"] == precision
