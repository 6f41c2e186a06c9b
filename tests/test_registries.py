"""A name is written once, in its registration: ``register`` names the class, every shipped
``conf/defense`` and ``conf/attack`` YAML resolves to the class registered under its stem,
every registered name has its YAML and its test file (with a ``RuleTester`` or
``AttackTester`` subclass for it), and :meth:`ClassRegistry.build` makes rules,
pre-aggregators and attacks from every config form the CLI accepts."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from attack_tester import AttackTester, DataAttackTester
from fedpoison_testing import CONF_DIR, compose_config
from hydra.utils import get_class
from omegaconf import OmegaConf
from rule_tester import RuleTester

from fedpoison.aggregators import AGGREGATORS, PRE_AGGREGATORS, build_defense
from fedpoison.aggregators.base import AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.krum import Krum
from fedpoison.aggregators.pre import Bucketing, NearestNeighborMixing
from fedpoison.attacks import (
    ALIE,
    DATA_ATTACKS,
    IPM,
    REPLY_ATTACKS,
    UPDATE_ATTACKS,
    build_attack,
)
from fedpoison.registry import ClassRegistry

REGISTRIES: dict[str, ClassRegistry] = {
    "defense": AGGREGATORS,
    "pre-aggregator": PRE_AGGREGATORS,
    "update attack": UPDATE_ATTACKS,
    "data attack": DATA_ATTACKS,
    "reply attack": REPLY_ATTACKS,
}
ATTACK_NODES: dict[str, ClassRegistry] = {
    "data": DATA_ATTACKS,
    "update": UPDATE_ATTACKS,
    "reply": REPLY_ATTACKS,
}
DEFENSE_YAMLS = sorted((Path(CONF_DIR) / "defense").glob("*.yaml"))
ATTACK_YAMLS = sorted((Path(CONF_DIR) / "attack").glob("*.yaml"))
TESTS = Path(__file__).resolve().parent


def load(path: Path) -> ModuleType:
    """The test module at ``path``, imported afresh (whatever pytest collected)."""
    spec = importlib.util.spec_from_file_location(f"registry_check_{path.stem}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- registration


@pytest.mark.parametrize("kind", REGISTRIES)
def test_registration_names_every_class(kind: str) -> None:
    """Each class carries its own ``name`` (not one inherited from a registered parent)."""
    registry = REGISTRIES[kind]
    assert registry.kind == kind and len(registry) > 0
    for name, cls in registry.items():
        assert vars(cls)["name"] == name == cls.name


class _Rule(Aggregator):
    paper = "test"

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        return AggregationResult(updates.mean(dim=0), torch.ones(updates.shape[0]))


def test_register_sets_the_name_and_refuses_another() -> None:
    registry: ClassRegistry[Aggregator] = ClassRegistry("rule", Aggregator)

    class Plain(_Rule):
        pass

    class Named(_Rule):
        name = "other"

    assert registry.register("plain")(Plain) is Plain and Plain.name == "plain"
    with pytest.raises(ValueError, match=r"rule 'mine': Named defines name='other'"):
        registry.register("mine")(Named)
    with pytest.raises(ValueError, match="rule 'plain' is already registered"):
        registry.register("plain")(type("Again", (_Rule,), {}))
    with pytest.raises(TypeError, match="is not a Aggregator"):
        registry.register("int")(int)  # type: ignore[arg-type]
    assert registry.names() == ["plain"] and Named.name == "other"


def test_registries_refuse_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        AGGREGATORS.register("krum")(Krum)
    with pytest.raises(ValueError, match="already registered"):
        PRE_AGGREGATORS.register("nnm")(NearestNeighborMixing)
    with pytest.raises(ValueError, match="defines name='krum'"):
        AGGREGATORS.register("krum2")(Krum)  # one class, one name


# ----------------------------------------------------------------------------- YAML stems


@pytest.mark.parametrize("path", DEFENSE_YAMLS, ids=lambda p: p.stem)
def test_defense_yaml_targets_the_rule_registered_under_its_stem(path: Path) -> None:
    assert get_class(OmegaConf.load(path)["_target_"]) is AGGREGATORS.get(path.stem)


def test_every_registered_rule_has_its_defense_yaml() -> None:
    assert sorted(AGGREGATORS.names()) == sorted(p.stem for p in DEFENSE_YAMLS)


def shared_testers(path: Path, base: type) -> list[type]:
    """The subclasses of the shared tester ``base`` that the test file ``path`` defines."""
    module = load(path)
    return [o for o in vars(module).values() if isinstance(o, type) and base in o.__mro__[1:]]


@pytest.mark.parametrize("name", AGGREGATORS.names())
def test_every_registered_rule_has_its_test_file(name: str) -> None:
    """``tests/aggregators/test_<name>.py`` runs the shared :class:`RuleTester` on the rule."""
    found = shared_testers(TESTS / "aggregators" / f"test_{name}.py", RuleTester)
    assert AGGREGATORS.get(name) in [t.rule for t in found], name


@pytest.mark.parametrize(
    ("registry", "name"),
    [(UPDATE_ATTACKS, n) for n in UPDATE_ATTACKS.names()]
    + [(DATA_ATTACKS, n) for n in DATA_ATTACKS.names()],
    ids=lambda v: v if isinstance(v, str) else v.kind.split()[0],
)
def test_every_registered_attack_has_its_test_file(registry: ClassRegistry, name: str) -> None:
    """``tests/attacks/test_<name>.py`` runs the shared :class:`AttackTester` (update attacks)
    or :class:`DataAttackTester` (data attacks) on the attack. (The reply attack ``malformed``
    is exercised end to end by ``test_acceptance_faults.py``.)"""
    base = AttackTester if registry is UPDATE_ATTACKS else DataAttackTester
    found = shared_testers(TESTS / "attacks" / f"test_{name}.py", base)
    assert registry.get(name) in [t.attack for t in found], name


@pytest.mark.parametrize("path", ATTACK_YAMLS, ids=lambda p: p.stem)
def test_attack_yaml_builds_the_attack_registered_under_its_stem(path: Path) -> None:
    """One of the YAML's ``data``/``update``/``reply`` nodes targets the class registered under
    the stem (``scaling.yaml`` also carries the backdoor, registered under its own stem);
    ``none.yaml`` alone has no node. Its ``name`` (recorded in results) is the stem."""
    cfg = OmegaConf.load(path)
    assert cfg.name == path.stem
    targets = {
        key: get_class(cfg[key]["_target_"]) for key in ATTACK_NODES if cfg.get(key) is not None
    }
    if path.stem == "none":
        assert targets == {}
        return
    owners = [key for key in targets if path.stem in ATTACK_NODES[key]]
    assert len(owners) == 1, (path.stem, targets)
    assert targets[owners[0]] is ATTACK_NODES[owners[0]].get(path.stem)


def test_every_registered_attack_has_its_attack_yaml() -> None:
    stems = {p.stem for p in ATTACK_YAMLS}
    for registry in ATTACK_NODES.values():
        assert set(registry.names()) <= stems, registry.kind


# ----------------------------------------------------------------------------- one build


def test_build_accepts_a_name_a_name_mapping_and_a_target() -> None:
    key = "defense.pre[0]"
    assert type(PRE_AGGREGATORS.build("nnm", key)) is NearestNeighborMixing
    by_name = PRE_AGGREGATORS.build({"name": "bucketing", "s": 3}, key)
    by_target = PRE_AGGREGATORS.build(
        OmegaConf.create({"_target_": "fedpoison.aggregators.pre.Bucketing", "s": 3}), key
    )
    for built in (by_name, by_target):
        assert isinstance(built, Bucketing) and built.s == 3
    assert type(AGGREGATORS.build("krum", "defense")) is Krum
    ipm = UPDATE_ATTACKS.build(OmegaConf.create({"name": "ipm", "epsilon": 2.0}), "attack.update")
    assert isinstance(ipm, IPM) and ipm.epsilon == 2.0


def test_build_errors_name_the_config_key() -> None:
    key = "defense.pre[1]"
    with pytest.raises(
        TypeError, match=r"^defense\.pre\[1\] must build a PreAggregator, got Krum$"
    ):
        PRE_AGGREGATORS.build({"_target_": "fedpoison.aggregators.Krum"}, key)
    with pytest.raises(TypeError, match=r"^defense must build a Aggregator, got IPM$"):
        AGGREGATORS.build({"_target_": "fedpoison.attacks.ipm.IPM"}, "defense")
    with pytest.raises(
        KeyError, match="unknown pre-aggregator 'nope'; known: arc, bucketing, clip"
    ):
        PRE_AGGREGATORS.build({"name": "nope"}, key)
    for bad in ({"s": 2}, 3):
        with pytest.raises(ValueError, match=r"^defense\.pre\[1\]: expected a pre-aggregator name"):
            PRE_AGGREGATORS.build(bad, key)


def test_the_cli_forms_build() -> None:
    """``defense=krum``, names and ``{name: ..., **params}`` in ``defense.pre``, and an attack
    config: composed as the CLI does, built as ``fedpoison.run.prepare`` does."""
    cfg = compose_config(
        ["defense=krum", "defense.pre=[nnm,{name:bucketing,s:2},{name:clip}]", "attack=alie"]
    )
    defense_cfg = OmegaConf.to_container(cfg.defense, resolve=True)
    assert isinstance(defense_cfg, dict)
    defense, f = build_defense(defense_cfg)
    assert f is None and defense.name == "nnm+bucketing+clip+krum"
    assert isinstance(defense.rule, Krum) and defense.pre[1].s == 2  # type: ignore[attr-defined]
    spec = build_attack(cfg.attack)
    assert spec.name == "alie" and isinstance(spec.update, ALIE) and spec.data is None
