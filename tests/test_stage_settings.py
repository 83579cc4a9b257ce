"""A stage's fingerprint holds the settings it passes on, so changing one re-runs the stage."""

from __future__ import annotations

from types import SimpleNamespace

from pipelines.config import load_pipeline_config
from pipelines.stages import StageSettings, evaluate_reid


def test_evaluate_reid_fingerprints_exactly_the_settings_it_passes(monkeypatch, tmp_path):
    seen: dict = {}
    monkeypatch.setattr(evaluate_reid, "evaluate_checkpoint",
                        lambda *args, **kwargs: seen.update(kwargs) or {"mAP": 1.0, "rank1": 2.0})
    deps = {"train_reid": SimpleNamespace(checkpoint="checkpoint.pt"), "prepare_data": SimpleNamespace(root="root")}
    for precision in ("fp32", "bf16"):
        settings = evaluate_reid.settings(load_pipeline_config("preset=smoke", f"reid.precision={precision}"))
        seen.clear()
        evaluate_reid.run(tmp_path, settings, deps)
        fingerprinted = settings.fingerprint()
        passed = {k: v for k, v in seen.items() if k not in ("device", "out")}
        assert passed == fingerprinted and fingerprinted["precision"] == precision


def test_every_stage_module_keeps_the_one_contract():
    import inspect

    from pipelines.graph import build_stages, fillers, instances, modules
    from pipelines.stages import StageOutput, StageSettings

    for module in modules():
        assert list(inspect.signature(module.run).parameters) == ["folder", "settings", "deps"], module.__name__
        assert next(iter(inspect.signature(module.settings).parameters)) == "cfg", module.__name__
        if module in fillers():  # the methods table declares their instances; results.json records a summary
            assert not hasattr(module, "instances") and callable(module.Result.summary), module.__name__
        else:
            assert list(inspect.signature(module.instances).parameters) == ["cfg"], module.__name__
        assert issubclass(module.Result, StageOutput), module.__name__
        assert inspect.signature(module.run).return_annotation in ("Result", module.Result), module.__name__
    cfg = load_pipeline_config("preset=smoke", "methods=none,patn,pona,copy,full", "reid.model.weights=auxiliary",
                               "reid.budget=iterations")
    stages = build_stages(cfg)
    # the graph is exactly the union of the modules' declarations, each upstream declared before its user
    declared = [i.name for m in modules() for i in instances(m, cfg)]
    assert list(stages) == declared
    seen: set[str] = set()
    for name, stage in stages.items():
        assert set(stage.deps) <= seen, name
        seen.add(name)
        # what run receives is what the fingerprint was computed from
        assert isinstance(stage.settings, StageSettings) and stage.inputs == stage.settings.fingerprint()
    # roles: the PATN copies read PATN's generator under the role the module knows, trained from PATN's section
    assert stages["synthesize[patn]"].roles["train_generator"] == "train_generator[patn]"
    assert stages["train_generator[patn]"].settings.train.generator == cfg.patn.train.generator
    assert stages["train_generator"].settings.train.generator == cfg.generator.train.generator
    assert stages["train_reid[pona]"].roles == {"training_set": "merge[augmented]", "pretrain_reid": "pretrain_reid",
                                                "prepare_data": "prepare_data"}
    assert stages["train_reid[full]"].roles == {"training_set": "prepare_data", "pretrain_reid": "pretrain_reid"}


def test_a_settings_field_is_fingerprinted_unless_declared_run_only():
    """Whatever run reads comes from its settings; a field left out of the fingerprint says so."""
    import dataclasses

    from pipelines.graph import build_stages

    cfg = load_pipeline_config("preset=smoke", "methods=none,patn,pona,copy,oracle,full",
                               "reid.model.weights=auxiliary")
    run_only = {}
    for stage in build_stages(cfg).values():
        fields = dataclasses.fields(stage.settings)
        module = stage.module_name.rsplit(".", 1)[-1]
        run_only[module] = sorted(f.name for f in fields if f.metadata.get("run_only"))
        if type(stage.settings).fingerprint is StageSettings.fingerprint:  # the generic one: every other field
            assert set(stage.inputs) == {f.name for f in fields} - set(run_only[module]), stage.name
    assert run_only == {"prepare_data": [], "subsample": [], "prepare_auxiliary": [], "pretrain_reid": [],
                        "train_generator": [], "synthesize": ["batch_size", "device", "scheduler", "shard_size",
                                                              "workers"],
                        "copy_conditions": [], "render_oracle": [], "merge": [], "train_reid": [],
                        "evaluate_reid": ["device"], "evaluate_generator": ["batch_size", "device"]}


def test_run_only_keys_are_declared_once_and_left_out_of_fingerprints():
    from pipelines.graph import build_stages
    from pona_model.train_config import RUN_CONTROL_KEYS as GAN_RUN_KEYS
    from reid.train_config import RUN_CONTROL_KEYS as REID_RUN_KEYS

    assert set(REID_RUN_KEYS) == {"out", "device", "num_workers", "threads", "resume", "checkpoint_every", "log_every",
                                  "progress"}
    assert set(GAN_RUN_KEYS) == {"out", "device", "num_workers", "threads", "resume", "checkpoint_every",
                                 "sample_every", "log_every"}
    base = build_stages(load_pipeline_config("preset=smoke"))
    run_only = build_stages(load_pipeline_config("preset=smoke", "reid.threads=3", "reid.log_every=7",
                                                 "reid.checkpoint_every=5", "generator.train.log_every=3",
                                                 "data.synthmarket.workers=2"))
    assert {n: s.key for n, s in base.items()} == {n: s.key for n, s in run_only.items()}
    computed = build_stages(load_pipeline_config("preset=smoke", "reid.optim.lr=0.02",
                                                 "generator.train.schedule.lr=0.001"))
    assert computed["train_reid[none]"].key != base["train_reid[none]"].key
    assert computed["train_generator"].key != base["train_generator"].key
    assert computed["prepare_data"].key == base["prepare_data"].key


def test_a_training_set_with_generated_images_sees_the_label_rule():
    from pipelines.graph import build_stages

    stages = build_stages(load_pipeline_config("preset=smoke", "methods=none,pona,copy", "augment.label=lsro"))
    assert stages["train_reid[pona]"].settings.reid.loss.generated_label == "lsro"
    assert stages["train_reid[copy]"].settings.reid.loss.generated_label == "lsro"
    assert stages["train_reid[none]"].settings.reid.loss.generated_label == "hard"


def test_a_pinned_generator_seed_shares_one_generator_across_run_seeds():
    from pipelines.graph import build_stages

    def stages(*args: str) -> dict:
        return build_stages(load_pipeline_config("preset=smoke", "evaluate_generator=true", "generator.train_on=auxiliary", *args))

    own = stages("seed=1"), stages("seed=2")
    assert own[0]["train_generator"].key != own[1]["train_generator"].key  # default: the run's seed
    pinned = stages("seed=1", "generator.seed=0"), stages("seed=2", "generator.seed=0")
    assert pinned[0]["train_generator"].key == pinned[1]["train_generator"].key == stages("seed=0")["train_generator"].key
    assert pinned[0]["evaluate_generator"].key == pinned[1]["evaluate_generator"].key
    assert pinned[0]["synthesize"].key != pinned[1]["synthesize"].key  # conditions still follow the run's seed
    assert pinned[0]["train_reid[pona]"].key != pinned[1]["train_reid[pona]"].key
