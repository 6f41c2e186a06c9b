"""Config fuzzing: hundreds of invalid configurations, each rejected before round 1 with one line
that names the field (or the rule) to change."""

from __future__ import annotations

import itertools

import pytest
from fedpoison_testing import compose_config

from fedpoison.config import ConfigError
from fedpoison.run import prepare

# (override(s), token the one-line message must contain)
INVALID: list[tuple[str, str]] = [
    *[(f"num_rounds={v}", "num_rounds") for v in (0, -1, "abc", 1.5)],
    *[(f"seed={v}", "seed") for v in (-1, "x", 0.5)],
    *[(f"training.lr={v}", "training.lr") for v in (0, -0.1, "abc")],
    *[(f"training.momentum={v}", "training.momentum") for v in (-1, "x")],
    *[(f"training.weight_decay={v}", "training.weight_decay") for v in (-1e-3, "x")],
    *[(f"training.batch_size={v}", "training.batch_size") for v in (0, -4, 2.5, "x")],
    *[(f"training.local_epochs={v}", "training.local_epochs") for v in (0, -1, "x")],
    *[(f"training.local_steps={v}", "training.local_steps") for v in (0, -2, "x")],
    *[(f"training.server_lr={v}", "training.server_lr") for v in (0, -1, "x")],
    *[(f"federation.num_clients={v}", "federation.num_clients") for v in (0, -3, "x", 2.5)],
    *[
        (f"federation.clients_per_round={v}", "federation.clients_per_round")
        for v in (0, -1, 21, 1000, "x")
    ],
    *[(f"federation.fraction={v}", "federation.fraction") for v in (0, -0.2, 1.5, "x")],
    *[(f"federation.timeout={v}", "federation.timeout") for v in (0, -5)],
    *[(f"federation.dropout_rate={v}", "federation.dropout_rate") for v in (-0.1, 1.0, "x")],
    *[(f"federation.straggler_fraction={v}", "federation.straggler_fraction") for v in (-0.1, 1.5)],
    *[(f"federation.straggler_slowdown={v}", "federation.straggler_slowdown") for v in (0.5, -2)],
    *[(f"federation.deadline={v}", "federation.deadline") for v in (0.5, -1)],
    *[(f"threat.num_malicious={v}", "threat.num_malicious") for v in (-1, 21, 500, "x")],
    *[(f"threat.fraction={v}", "threat.fraction") for v in (-0.1, 1.5, "x")],
    *[(f"threat.selection={v}", "threat.selection") for v in ("bogus", "random")],
    *[(f"threat.knowledge={v}", "threat.knowledge") for v in ("bogus", "none")],
    *[(f"threat.start_round={v}", "threat.start_round") for v in (0, -1)],
    ("threat.start_round=5 threat.end_round=2", "threat.end_round"),
    ("threat.selection=explicit threat.ids=[25]", "threat.ids"),
    ("threat.selection=explicit threat.ids=[-1]", "threat.ids"),
    *[
        (f"robustness.on_invalid_reply={v}", "robustness.on_invalid_reply")
        for v in ("drop", "ignore")
    ],
    *[
        (f"robustness.skip_invalid_rounds={v}", "robustness.skip_invalid_rounds")
        for v in ("maybe",)
    ],
    *[(f"checkpoint_every={v}", "checkpoint_every") for v in (-1, "x")],
    *[(f"output.fsync_every_round={v}", "output.fsync_every_round") for v in ("maybe", 0.5)],
    *[(f"eval_every={v}", "eval_every") for v in (0, -2, "x")],
    ("defense=fltrust defense.root.procedure=sum", "root.procedure"),
    *[(f"privacy=central privacy.noise_multiplier={v}", "noise_multiplier") for v in (0, -0.5)],
    *[
        (f"privacy={m} privacy.delta={v}", "delta")
        for m in ("central", "local")
        for v in (0.1, 1.5)
    ],
    ("privacy=dpsgd privacy.delta=0.5", "delta"),
    ("privacy=dpsgd model=resnet8 model.norm=batch", "Opacus-compatible"),
    (
        "privacy=central privacy.target_quantile=0.5 privacy.clip_count_stddev=0.1",
        "clip_count_stddev",
    ),
    ("privacy=central privacy.accountant=moments", "accountant"),
    ("privacy=bogus", "privacy"),
    *[(f"{flag}=maybe", flag) for flag in ("resume", "baseline", "verbose", "progress")],
    *[(f"device={v}", "device") for v in ("tpu", "gpu0")],
    ("defense=krum threat.num_malicious=9", "krum"),
    ("defense=multi_krum threat.num_malicious=9", "krum"),
    ("defense=bulyan threat.num_malicious=5", "bulyan"),
    ("defense=trimmed_mean threat.num_malicious=10", "trimmed"),
    ("defense=krum defense.f=10", "krum"),
    ("defense=krum federation.clients_per_round=4 threat.num_malicious=2", "krum"),
    *[
        (f"attack={a} threat.knowledge=own", "threat.knowledge")
        for a in ("ipm", "min_max", "min_sum", "adaptive")
    ],
    ("attack=adaptive threat.knows_defense=false", "knows_defense"),
    *[(f"partition=dirichlet partition.alpha={v}", "alpha") for v in (0, -1)],
    *[(f"dataset.test_fraction={v}", "test_fraction") for v in (0, 1.5, -0.1)],
    ("federation.num_clients=5000", "num_clients"),
]
CONTEXTS = [
    "defense=median",
    "defense=fedavg",
    "defense=trimmed_mean",
    "attack=sign_flip",
    "engine=ray",
]
CASES = [(ctx, bad, token) for ctx, (bad, token) in itertools.product(CONTEXTS, INVALID)]


def test_fuzz_suite_is_large():
    assert len(CASES) >= 300


@pytest.mark.parametrize(("context", "bad", "token"), CASES)
def test_invalid_config_rejected_with_one_line(context, bad, token):
    overrides = ["progress=false", context, *bad.split()]
    try:
        cfg = compose_config(overrides)
    except Exception as exc:  # noqa: BLE001 - Hydra/OmegaConf reject some types at compose time
        assert token.split(".")[-1] in str(exc) or token.split(".")[0] in str(exc)
        return
    with pytest.raises(ConfigError) as info:
        prepare(cfg)
    message = str(info.value)
    assert "\n" not in message, message
    assert token in message, message
