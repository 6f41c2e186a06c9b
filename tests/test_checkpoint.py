"""Checkpoints: what a resumed run may change, and its ``wall_s`` (time before the checkpoint
included)."""

from __future__ import annotations

import pytest
import torch

from fedpoison.checkpoint import CHECKPOINT, checkpoint_wall_s
from fedpoison.config import ConfigError
from tests.fedpoison_testing import TINY, run_simulation


def test_wall_s_of_an_old_checkpoint_is_the_sum_of_its_rounds_timings():
    rounds = [
        {"round": 1, "train_s": 1.5, "aggregate_s": 0.25, "eval_s": 0.25},
        {"round": 2, "train_s": 2.0, "aggregate_s": None, "eval_s": 0.0},
    ]
    assert checkpoint_wall_s({"round": 2, "rounds": rounds}) == 4.0
    assert checkpoint_wall_s({"round": 2, "rounds": rounds, "wall_s": 9.5}) == 9.5


def test_resumed_run_counts_the_time_it_took_to_reach_the_checkpoint(tmp_path):
    overrides = [*TINY, "num_rounds=4", "checkpoint_every=2"]
    first = run_simulation(overrides, tmp_path)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["round"] == 4 and 0.0 < state["wall_s"] <= first["provenance"]["wall_s"]
    state["wall_s"] = 1000.0  # as if the rounds before the checkpoint had taken 1000 s
    torch.save(state, tmp_path / CHECKPOINT)
    resumed = run_simulation([*overrides, "resume=true"], tmp_path)
    assert resumed["provenance"]["resumed_after_round"] == 4
    assert 1000.0 <= resumed["provenance"]["wall_s"] < 1100.0
    assert [r["accuracy"] for r in resumed["rounds"]] == [r["accuracy"] for r in first["rounds"]]


def test_resume_refuses_a_checkpoint_of_other_settings_before_round_one(tmp_path):
    overrides = [*TINY, "num_rounds=4", "checkpoint_every=2"]
    run_simulation(overrides, tmp_path)
    before = (tmp_path / "results.json").read_bytes()
    with pytest.raises(ConfigError, match=r"other settings \(attack\.[a-z_]+.*resume=false"):
        run_simulation(
            [*overrides, "resume=true", "attack=sign_flip", "threat.num_malicious=0"], tmp_path
        )
    with pytest.raises(ConfigError, match=r"after round 4 but num_rounds=3"):
        run_simulation([*TINY, "num_rounds=3", "checkpoint_every=2", "resume=true"], tmp_path)
    assert (tmp_path / "results.json").read_bytes() == before  # nothing written is lost


def test_resume_with_more_rounds_extends_the_run_as_if_never_stopped(tmp_path):
    run_simulation([*TINY, "num_rounds=2", "checkpoint_every=2"], tmp_path / "short")
    extended = run_simulation(
        [*TINY, "num_rounds=4", "checkpoint_every=2", "resume=true", "progress=true"],
        tmp_path / "short",
    )
    whole = run_simulation([*TINY, "num_rounds=4", "checkpoint_every=2"], tmp_path / "whole")
    assert extended["provenance"]["resumed_after_round"] == 2
    assert [r["accuracy"] for r in extended["rounds"]] == [r["accuracy"] for r in whole["rounds"]]
