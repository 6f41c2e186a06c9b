"""Configs, composition, knowledge enforcement and the malicious pool."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from fedpoison.aggregators.pipeline import Defense
from fedpoison.aggregators.pre import Clip
from fedpoison.attacks import (
    ALIE,
    IPM,
    Adaptive,
    AttackSpec,
    Backdoor,
    MinMax,
    Scaling,
    ThreatModel,
    build_attack,
    build_view,
    check_attack,
)
from fedpoison.attacks.catalogue import ATTACK_CONF_DIR, attack_catalogue

CONF = ATTACK_CONF_DIR.parent
ATTACK_YAMLS = sorted((CONF / "attack").glob("*.yaml"))


@pytest.mark.parametrize("path", ATTACK_YAMLS, ids=lambda p: p.stem)
def test_every_yaml_builds_and_is_commented(path: Path) -> None:
    cfg = OmegaConf.load(path)
    spec = build_attack(cfg)
    assert (
        spec.data is not None
        or spec.update is not None
        or spec.reply is not None
        or spec.name == "none"
    )
    text = path.read_text().splitlines()
    assert text[0].startswith("# ")
    for line in text[1:]:
        if (
            ":" in line
            and not line.strip().startswith("_target_")
            and not line.strip().endswith(":")
        ):
            assert "  # " in line, f"{path.name}: uncommented field {line!r}"
    check_attack(spec, ThreatModel(knowledge="all", knows_defense=True))


def test_catalogue_lists_every_attack_config() -> None:
    table = attack_catalogue()
    assert table.startswith("| attack | kind |")
    assert all(f"| `{path.stem}` |" in table for path in ATTACK_YAMLS)


def test_scaling_config_composes_backdoor_and_scaling() -> None:
    spec = build_attack(OmegaConf.load(CONF / "attack" / "scaling.yaml"))
    assert isinstance(spec.data, Backdoor) and isinstance(spec.update, Scaling)
    assert dataclasses.is_dataclass(spec) and spec.__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_build_attack_from_dict_and_bad_target() -> None:
    spec = build_attack(
        {
            "name": "x",
            "data": None,
            "update": {"_target_": "fedpoison.attacks.ipm.IPM", "epsilon": 2},
        }
    )
    assert isinstance(spec.update, IPM) and spec.update.epsilon == 2.0
    with pytest.raises(TypeError, match="UpdateAttack"):
        build_attack(
            {
                "name": "x",
                "data": None,
                "update": {"_target_": "fedpoison.attacks.backdoor.Backdoor"},
            }
        )
    with pytest.raises(ValueError, match="lacks"):
        build_attack({"name": "x"})
    by_name = build_attack({"name": "x", "data": None, "update": {"name": "ipm", "epsilon": 3}})
    assert isinstance(by_name.update, IPM) and by_name.update.epsilon == 3.0
    named = build_attack({"name": "x", "data": "label_flip", "update": None, "reply": "malformed"})
    assert type(named.data).__name__ == "LabelFlip" and type(named.reply).__name__ == "Malformed"


def test_check_attack_knowledge_message() -> None:
    spec = AttackSpec("alie_benign", None, ALIE(stat_source="benign"))
    with pytest.raises(ValueError) as err:
        check_attack(spec, ThreatModel(knowledge="own"))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(
        "attack alie_benign needs threat.knowledge=all (got own); set threat.knowledge=all"
    )
    assert "sign_flip" in msg
    check_attack(AttackSpec("alie", None, ALIE()), ThreatModel(knowledge="own"))
    check_attack(AttackSpec("mm", None, MinMax(knowledge="own")), ThreatModel(knowledge="own"))
    with pytest.raises(ValueError, match="threat.knowledge=all"):
        check_attack(AttackSpec("ipm", None, IPM()), ThreatModel(knowledge="own"))


def test_check_attack_defense_message() -> None:
    spec = AttackSpec("adaptive", None, Adaptive())
    with pytest.raises(ValueError, match="set threat.knows_defense=true"):
        check_attack(spec, ThreatModel(knowledge="all", knows_defense=False))
    check_attack(spec, ThreatModel(knowledge="all", knows_defense=True))
    check_attack(AttackSpec("backdoor", Backdoor(), None), ThreatModel(knowledge="own"))


def test_build_view_enforces_knowledge(mean_defense) -> None:
    own, benign = torch.randn(2, 3), torch.randn(5, 3)
    common = dict(global_weights=torch.zeros(3), server_lr=1.0, generator=torch.Generator())
    defense = Defense(mean_defense, [Clip(max_norm=1.0)])
    view = build_view(
        own, benign, threat=ThreatModel(knowledge="own"), defense=defense, f=2, **common
    )
    assert view.benign is None and view.defense is None and view.f is None
    assert view.num_participants == 7 and view.num_malicious == 2
    assert torch.equal(view.known, own)
    view = build_view(
        own,
        benign,
        threat=ThreatModel(knowledge="all", knows_defense=True),
        defense=defense,
        f=2,
        **common,
    )
    # the whole deployed pipeline, not only its rule
    assert view.benign is benign and view.defense is defense and view.f == 2
    assert view.defense.rule is mean_defense and view.defense.name == "clip+test_mean"
    assert torch.equal(view.known, torch.cat([own, benign]))
    with pytest.raises(ValueError, match="build_view"):
        build_view(own, torch.randn(5, 4), threat=ThreatModel(), **common)


def test_malicious_pool_stable_and_sized() -> None:
    threat = ThreatModel(num_malicious=7)
    pools = [threat.malicious_ids(50, seed=3) for _ in range(3)]
    assert pools[0] == pools[1] == pools[2] and len(pools[0]) == 7
    assert all(0 <= i < 50 for i in pools[0])
    assert len(ThreatModel(fraction=0.25).malicious_ids(50, seed=3)) == 12
    assert ThreatModel(selection="explicit", ids=(4, 1)).malicious_ids(10, seed=0) == {1, 4}
    assert threat.malicious_ids(50, seed=4) != pools[0]


def test_threat_default_yaml_matches_dataclass() -> None:
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "threat" / "default.yaml"))
    assert isinstance(cfg, dict)
    fields = {f.name: f.default for f in dataclasses.fields(ThreatModel)}
    assert set(cfg) == set(fields)
    cfg["ids"] = tuple(cfg["ids"])
    assert ThreatModel(**cfg) == ThreatModel()  # type: ignore[arg-type]
