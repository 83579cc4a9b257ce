"""Following the run config through ``python -m pipelines.run`` (``bench/config_walk.py``): the calls that
are handed the config or a part of it climb back up the package layering at most 4 times (issue 22).

The climbs left are config classes whose own ``__post_init__`` checks what one field's declared range
cannot say (between fields, or a spelling normalised), run when ``runtime.config.build`` makes them."""

from __future__ import annotations

from tests.conftest import load_bench


def test_the_smoke_runs_config_walk_climbs_back_up_at_most_four_times(tmp_path):
    walk = load_bench("config_walk").trace_run(["preset=smoke", f"out={tmp_path}"])
    whole, run = walk["main"], walk["run_pipeline"]
    assert whole["climbs"] <= 4, whole["climb_edges"]
    assert run["climbs"] <= 1, run["climb_edges"]
    assert all(edge.startswith("runtime.config.build (runtime) -> ") and ".__post_init__ (" in edge
               for edge in whole["climb_edges"]), whole["climb_edges"]
    # the walk itself is followed: the config reaches every stage's settings and the trainers
    assert "pipelines.graph.build_stages" in run["stop_functions"]
    assert "reid.trainer.ReidTrainer.__init__" in run["stop_functions"]
    assert "pona_model.trainer.Trainer.__init__" in run["stop_functions"]
