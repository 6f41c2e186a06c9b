"""``AttackTester`` and ``DataAttackTester``: the checks every update attack and every data
attack passes (in the manner of torchmetrics' ``MetricTester``).

An attack's test file subclasses one of them and holds only its formulas and special cases::

    class TestIPM(AttackTester):
        attack = IPM

For an update attack pytest then collects: crafted rows of shape ``(m, d)`` in the view's
dtype and device, finite (``finite = False`` for ``infinity``), new tensors; the view's tensors not
mutated; the same generator giving the same rows; rows independent of ``view.own`` when the
attack's ``reads_own_updates()`` says so; and the knowledge the attack declares
(``required_knowledge()``, ``requires_defense()``) enforced both ways: granted, it crafts;
withheld, ``check_attack`` refuses the config and ``craft`` refuses the view, each naming what
to set. For a data attack: poisoned copies of the inputs' shapes and dtypes, labels in range,
inputs untouched, the same generator giving the same data, and a consistent ``success_set``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.aggregators.base import AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.pipeline import Defense
from fedpoison.attacks import (
    KNOWLEDGE_ORDER,
    AdversaryView,
    AttackSpec,
    ClientRound,
    DataAttack,
    ThreatModel,
    UpdateAttack,
    build_view,
    check_attack,
)
from fedpoison.data.base import ImageDataset


class CoordinateMedian(Aggregator):
    """A tiny stand-in defense (coordinate-wise median) that counts how often it runs."""

    name = "test_median"
    paper = "test"

    def __init__(self) -> None:
        self.calls = 0

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        self.calls += 1
        weights = torch.ones(updates.shape[0], dtype=updates.dtype)
        return AggregationResult(updates.median(dim=0).values, weights)


class Mean(CoordinateMedian):
    name = "test_mean"

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        self.calls += 1
        weights = torch.ones(updates.shape[0], dtype=updates.dtype)
        return AggregationResult(updates.mean(dim=0), weights)


def view(
    own: torch.Tensor,
    benign: torch.Tensor,
    knowledge: str = "all",
    knows_defense: bool = False,
    seed: int = 0,
    server_lr: float = 1.0,
    defense: Defense | Aggregator | None = None,
    f: int | None = None,
) -> AdversaryView:
    """The view ``build_view`` grants under ``ThreatModel(knowledge, knows_defense)``; a bare
    rule as ``defense`` stands for the pipeline ``Defense(rule)`` (no pre-aggregator)."""
    threat = ThreatModel(knowledge=knowledge, knows_defense=knows_defense)  # type: ignore[arg-type]
    if isinstance(defense, Aggregator):
        defense = Defense(defense)
    return build_view(
        own,
        benign,
        threat=threat,
        global_weights=torch.zeros(own.shape[1], dtype=own.dtype),
        server_lr=server_lr,
        generator=torch.Generator().manual_seed(seed),
        defense=defense,
        f=f,
    )


class AttackTester:
    """Subclass with ``attack`` (an :class:`UpdateAttack`) set; see the module docstring."""

    attack: ClassVar[type[UpdateAttack]]
    params: ClassVar[dict[str, Any]] = {}
    """Constructor arguments of the configuration under test."""
    finite: ClassVar[bool] = True
    """Whether the crafted rows are finite (``False`` only for ``infinity``: its rows are ∞)."""

    def make(self) -> UpdateAttack:
        return self.attack(**self.params)

    def test_update_attack_contract(self) -> None:
        @settings(max_examples=15, deadline=None)
        @given(
            m=st.integers(1, 3),
            extra=st.integers(3, 6),
            d=st.integers(1, 6),
            seed=st.integers(0, 2**16),
            double=st.booleans(),
        )
        def check(m: int, extra: int, d: int, seed: int, double: bool) -> None:
            dtype = torch.float64 if double else torch.float32
            g = torch.Generator().manual_seed(seed)
            own = torch.randn(m, d, generator=g, dtype=dtype)
            benign = torch.randn(2 * m + extra, d, generator=g, dtype=dtype)  # n ≥ 2m+3: Krum
            own0, benign0 = own.clone(), benign.clone()
            attack = self.make()

            def craft():
                defense = CoordinateMedian()
                v = view(own, benign, knows_defense=True, defense=defense, f=m, seed=seed)
                return attack.craft(v)

            first, second = craft(), craft()
            assert first.updates.shape == (m, d)
            assert first.updates.dtype == dtype and first.updates.device == own.device
            assert bool(torch.isfinite(first.updates).all()) == self.finite
            assert torch.equal(first.updates, second.updates)
            assert (first.num_examples is None) == (second.num_examples is None)
            assert torch.equal(own, own0) and torch.equal(benign, benign0)
            assert first.updates.data_ptr() not in (own.data_ptr(), benign.data_ptr())

        check()

    def test_rows_ignore_own_updates_when_it_says_so(self) -> None:
        """An attack whose ``reads_own_updates()`` is false crafts the same rows whatever the
        values of ``view.own`` (the CLI's malicious clients then skip training and send zero
        updates in their place): random own rows, zeros and NaN all give one answer."""
        if self.make().reads_own_updates():
            return
        g = torch.Generator().manual_seed(0)
        own, benign = torch.randn(3, 5, generator=g), torch.randn(9, 5, generator=g)

        def craft(own: torch.Tensor) -> torch.Tensor:
            v = view(own, benign, knows_defense=True, defense=CoordinateMedian(), f=3, seed=7)
            return self.make().craft(v).updates

        rows = craft(own)
        for other in (torch.zeros_like(own), torch.full_like(own, math.nan)):
            assert torch.equal(craft(other), rows)

    def test_declared_knowledge_is_enough_and_enforced(self) -> None:
        """With what ``required_knowledge()``/``requires_defense()`` declare, the config passes
        ``check_attack`` and the attack crafts; with less, both refuse, naming the setting."""
        attack = self.make()
        need, needs_defense = attack.required_knowledge(), attack.requires_defense()
        assert KNOWLEDGE_ORDER[attack.knowledge] <= KNOWLEDGE_ORDER[need]  # class minimum
        own, benign = torch.randn(3, 5), torch.randn(9, 5)
        spec = AttackSpec(self.attack.name, None, attack)

        def craft(knowledge: str, knows_defense: bool) -> torch.Tensor:
            defense = CoordinateMedian()
            v = view(own, benign, knowledge, knows_defense, defense=defense, f=3)
            return attack.craft(v).updates

        check_attack(spec, ThreatModel(knowledge=need, knows_defense=needs_defense))
        rows = craft(need, needs_defense)
        assert rows.shape == own.shape and bool(torch.isfinite(rows).all()) == self.finite
        if need == "all":
            with pytest.raises(ValueError, match="needs threat.knowledge=all"):
                check_attack(spec, ThreatModel(knowledge="own", knows_defense=True))
            with pytest.raises(ValueError, match=f"^{self.attack.name}.*threat.knowledge=all"):
                craft("own", True)
        if needs_defense:
            with pytest.raises(ValueError, match="threat.knows_defense=true"):
                check_attack(spec, ThreatModel(knowledge="all", knows_defense=False))
            with pytest.raises(ValueError, match=f"^{self.attack.name}.*knows_defense"):
                craft("all", False)


def client_round(
    x: torch.Tensor, y: torch.Tensor, rank: int = 0, num_malicious: int = 4, seed: int = 0
) -> ClientRound:
    """A malicious client of rank ``rank`` holding ``(x, y)``, a linear model on their shape
    and a dataset whose splits are ``(x, y)`` (the edge-case set's source)."""
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 10))
    data = ImageDataset("test", x, y, x, y, 10)
    return ClientRound(
        model, x, y, 10, rank, num_malicious, 1, torch.Generator().manual_seed(seed), None, data
    )


class DataAttackTester:
    """Subclass with ``attack`` (a :class:`DataAttack`) set; see the module docstring. The
    checks run on the attack bound to a client (:meth:`DataAttack.for_client`)."""

    attack: ClassVar[type[DataAttack]]
    params: ClassVar[dict[str, Any]] = {}

    def make(self) -> DataAttack:
        return self.attack(**self.params)

    @pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
    def test_data_attack_contract(self, shape: tuple[int, int, int]) -> None:
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand((40, *shape), generator=g), torch.randint(0, 10, (40,), generator=g)
        x0, y0 = x.clone(), y.clone()
        attack = self.make().for_client(client_round(x, y))
        px, py = attack.poison(x, y, 10, torch.Generator().manual_seed(1))
        again = attack.poison(x, y, 10, torch.Generator().manual_seed(1))
        assert torch.equal(x, x0) and torch.equal(y, y0)
        assert px.shape == x.shape and px.dtype == x.dtype and px.device == x.device
        assert py.shape == y.shape and py.dtype == y.dtype and bool(((0 <= py) & (py < 10)).all())
        assert torch.equal(px, again[0]) and torch.equal(py, again[1])
        success = attack.success_set(x, y)
        assert torch.equal(x, x0) and torch.equal(y, y0)
        if success is not None:
            sx, sy = success
            assert sx.shape[1:] == x.shape[1:] and sx.shape[0] == sy.shape[0] <= x.shape[0]
        named = attack.success_sets(x, y)
        assert (success is None) == ("asr" not in named)
        if success is not None:
            assert torch.equal(named["asr"][0], success[0])

    def test_shaping_leaves_the_model_and_keeps_training_finite(self) -> None:
        """The shaping (if any) is built without changing the model, and a few hooked SGD
        steps keep the weights finite."""
        g = torch.Generator().manual_seed(0)
        x, y = torch.rand((24, 1, 8, 8), generator=g), torch.randint(0, 10, (24,), generator=g)
        client = client_round(x, y)
        before = [p.detach().clone() for p in client.parameters()]
        attack = self.make().for_client(client)
        shaping = attack.shaping(client)
        params = client.parameters()
        assert all(torch.equal(a, b) for a, b in zip(before, params, strict=True))
        assert all(p.grad is None for p in params)
        if shaping is None:
            return
        px, py = attack.poison(x, y, 10, torch.Generator().manual_seed(1))
        for step in range(3):
            loss = torch.nn.functional.cross_entropy(client.model(px), py)  # type: ignore[misc]
            loss.backward()
            with torch.no_grad():
                shaping.after_backward(params)
                for p in params:
                    p.sub_(0.1 * p.grad)  # type: ignore[operator]
                    p.grad = None
                shaping.after_step(params, step == 2)
        with torch.no_grad():
            shaping.finish(params)
        assert all(bool(torch.isfinite(p).all()) for p in params)
