"""engine=vectorized: the round's clients trained as one batched call give what engine=inline
gives (within float32 round-off), with data attacks, reply attacks and local DP applied per
client; what it cannot run exactly is refused before round 1."""

from __future__ import annotations

import pytest

from fedpoison.config import ConfigError


def _rows(results):
    return results["rounds"]


@pytest.mark.parametrize(
    "overrides",
    [
        ["attack=alie"],
        ["attack=label_flip"],
        ["attack=backdoor"],
        ["attack=malformed"],
        ["privacy=local"],
        ["training.momentum=0.9", "training.local_epochs=2"],
        ["federation.clients_per_round=4", "defense=krum"],
    ],
    ids=["alie", "label_flip", "backdoor", "malformed", "local_dp", "momentum-epochs", "krum"],
)
def test_agrees_with_inline(simulate, overrides: list[str]) -> None:
    inline = simulate(["engine=inline", *overrides], "inline")
    vectorized = simulate(["engine=vectorized", *overrides], "vectorized")
    assert vectorized["provenance"]["engine"] == "vectorized"
    for a, b in zip(_rows(inline), _rows(vectorized), strict=True):
        assert a["participants"] == b["participants"] and a["invalid"] == b["invalid"]
        assert a["rejected"] == b["rejected"]
        assert b["accuracy"] == pytest.approx(a["accuracy"], abs=0.02)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4, nan_ok=True)


def test_identical_run_to_run(simulate) -> None:
    a = simulate(["engine=vectorized", "attack=alie"], "a")
    b = simulate(["engine=vectorized", "attack=alie"], "b")
    keep = ("accuracy", "loss", "train_loss", "rejected")
    assert [{k: r[k] for k in keep} for r in _rows(a)] == [
        {k: r[k] for k in keep} for r in _rows(b)
    ]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["privacy=dpsgd"], "privacy=DPSGD trains each client its own way; use engine=inline"),
        (["model=resnet8", "model.norm=batch"], "BatchNorm2d layer 1 is not row-independent"),
    ],
)
def test_refused_before_round_1(simulate, overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        simulate(["engine=vectorized", *overrides])
