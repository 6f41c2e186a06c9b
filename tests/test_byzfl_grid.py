"""experiment=byzfl_grid: ByzFL's benchmark setting composes, and every job of its sweep is
prepared (checked) before round 1."""

from __future__ import annotations

import pytest
from fedpoison_testing import compose_config
from omegaconf import OmegaConf

from fedpoison.conf import CONF_DIR
from fedpoison.run import prepare

PRESET = OmegaConf.load(CONF_DIR / "experiment" / "byzfl_grid.yaml")
SWEEP = PRESET.hydra.sweeper.params
DEFENSES = str(SWEEP.defense).split(",")
ATTACKS = str(SWEEP.attack).split(",")
JOBS = list(
    dict.fromkeys([(d, "optimal_alie") for d in DEFENSES] + [("trimmed_mean", a) for a in ATTACKS])
)


def test_the_setting_is_byzfls():
    sim = prepare(compose_config(["experiment=byzfl_grid", "attack=sign_flip"]))
    assert sim.participation.num_clients == 13 and len(sim.participation.malicious) == 3
    assert sim.participation.clients_per_round == 13
    assert sim.client_spec.worker_momentum.beta == 0.9
    assert sim.client_spec.worker_momentum.scale == pytest.approx(0.1)  # EMA
    assert (sim.procedure.lr, sim.procedure.batch_size, sim.procedure.local_steps) == (0.1, 25, 1)
    assert sim.procedure.weight_decay == 1e-4
    assert sim.robust.defense.name == "clip+nnm+trimmed_mean"
    assert sim.cfg.num_rounds == 800 and sim.cfg.eval_every == 50


@pytest.mark.parametrize(("defense", "attack"), JOBS, ids=[f"{d}-{a}" for d, a in JOBS])
def test_every_job_of_the_sweep_is_prepared(defense, attack):
    sim = prepare(
        compose_config(["experiment=byzfl_grid", f"defense={defense}", f"attack={attack}"])
    )
    assert sim.robust.defense.name.endswith(defense)
