"""The run's ``certify`` step: a defense that certifies its final model does so once, after
the last round, and :func:`fedpoison.execute.execute` stores the result in
``results.json["certify"]``.

Only CRFL certifies (test-time parameter smoothing, :meth:`fedpoison.aggregators.CRFL.certify`).
The attack the certificate covers is read from the run: ``R`` = the malicious pool, at most
the clients per round (every attacker assumed present, the conservative case); ``N`` = the
clients per round; ``τ`` = ``training.local_steps``, else the epochs times the batches of the
largest partition; η = ``training.lr``; ``t_adv`` = ``threat.end_round`` (the last round the
attackers act in; the last round when unset); ``T`` = ``num_rounds``. The attackers' scale
factor and poisoned fraction are the rule's own parameters (``defense.scale``,
``defense.poison_fraction``). The smoothing noise derives from (seed, ``CERTIFY``).
"""

from __future__ import annotations

import math
from typing import Any

from flwr.app import ArrayRecord

from fedpoison.aggregators.crfl import CRFL, Threat
from fedpoison.aggregators.flat_model import FlatModel
from fedpoison.records import to_state_dict
from fedpoison.run import Simulation
from fedpoison.seeding import CERTIFY, torch_generator


def run_threat(sim: Simulation, rule: CRFL) -> Threat:
    """Thm. 2's attack quantities for this run (see the module docstring)."""
    cfg, participation = sim.cfg, sim.participation
    per_round = participation.clients_per_round
    training = sim.procedure
    largest = max(len(p) for p in sim.federation.partitions)
    steps = training.local_steps or training.local_epochs * math.ceil(largest / training.batch_size)
    end = cfg.threat.get("end_round")
    return Threat(
        attackers=min(len(participation.malicious), per_round),
        clients_per_round=per_round,
        local_iters=int(steps),
        lr=float(training.lr),
        scale=rule.scale,
        poison_fraction=rule.poison_fraction,
        attack_round=int(cfg.num_rounds if end is None else min(end, cfg.num_rounds)),
        num_rounds=int(cfg.num_rounds),
    )


def certify_final(sim: Simulation, arrays: ArrayRecord) -> dict[str, Any] | None:
    """The rule's certificate of the final model ``arrays`` on the test set; ``None`` when the
    defense does not certify."""
    rule = sim.robust.defense.rule
    if not isinstance(rule, CRFL):
        return None
    device = sim.robust.server.device
    net = sim.federation.new_model().to(device)
    net.load_state_dict(to_state_dict(arrays))
    model = FlatModel(net, sim.federation.data.input_shape)
    data = sim.federation.data
    generator = torch_generator(int(sim.cfg.seed), CERTIFY, device=device)
    x = data.x_test.to(device)
    return rule.certify(model, model.vector(), x, data.y_test, run_threat(sim, rule), generator)
