"""``RuleTester``: the checks every aggregation rule passes, and those its declared properties
enable (in the manner of torchmetrics' ``MetricTester``).

A rule's test file subclasses it once and holds only the rule's oracle and special cases::

    class TestKrum(RuleTester):
        rule = Krum
        bound = "2f+3"  # the precondition text its ValueError names

pytest then collects, for that rule: result shape, dtype and device; purity (input not
mutated) and reproducibility (same generator ⇒ same output); permutation invariance;
non-finite rows refused and extreme finite rows kept finite; the n/f precondition error
naming the rule, ``n``, ``f`` and the bound; the ``state_dict`` round trip; the generator and
server-update requirements; client-reported counts ignored; and one check per property the
rule declares on its class (``translation_equivariant``, ``scale_equivariant``, ``unanimous``,
``rejects_far_rows``, ``bounded_by_honest``, ``bounded_influence``,
``aggregate_is_weighted_sum``; see :class:`fedpoison.aggregators.base.Aggregator`). A check
whose property the rule does not declare is removed from the subclass, not skipped.

The Hypothesis checks build their ``@given`` function per call, so one check serves every
rule's class (Hypothesis refuses one ``@given`` method run by several classes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import torch
from fedpoison_testing import round_context
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.aggregators.base import AggregationResult, Aggregator, RoundContext

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-8) -> None:
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def data(
    n: int = 11, d: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def context(x: torch.Tensor, f: int = 2, seed: int = 0, **kw: Any) -> RoundContext:
    return round_context(x, f, seed, **kw)


@st.composite
def matrices(draw, min_rows_for_f=lambda f: max(4 * f + 3, f + 4), fs=None):
    """``(x, f)``: continuous data (ties improbable), offset and scale varied. By default
    ``n ≥ 4f+3`` (every rule runs) and ``n ≥ f+4``, so Krum sums at least two distances: with
    one neighbour, two mutual nearest neighbours always tie (→ lowest index)."""
    f = draw(st.integers(0, 2) if fs is None else fs)
    n = min_rows_for_f(f) + draw(st.integers(0, 5))
    d = draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    loc = draw(st.floats(-10, 10))
    scale = draw(st.floats(0.1, 10))
    return loc + scale * torch.randn(n, d, generator=g, dtype=torch.float64), f


def with_byzantine_rows(x: torch.Tensor, f: int, values: list[float]) -> torch.Tensor:
    """A copy of ``x`` whose first ``f`` rows are replaced by ``values`` (row-major)."""
    y = x.clone()
    y[:f] = torch.tensor(values, dtype=x.dtype)[: f * x.shape[1]].reshape(f, x.shape[1])
    return y


def declared(prop: str, value: bool = True) -> Callable[[Callable], Callable]:
    """Mark a check as run only for rules whose class sets ``prop`` to ``value``."""

    def mark(check: Callable) -> Callable:
        check.declared = (prop, value)  # type: ignore[attr-defined]
        return check

    return mark


class RuleTester:
    """Subclass with ``rule`` set; see the module docstring."""

    rule: ClassVar[type[Aggregator]]
    params: ClassVar[dict[str, Any]] = {}
    """Constructor arguments of the rule under test (every check)."""
    exact: ClassVar[dict[str, Any]] = {}
    """Further arguments for the exact symmetry checks (FLAME without its noise)."""
    bound: ClassVar[str | None] = None
    """Text of the precondition in the rule's ``ValueError`` (``"2f+3"``); ``None`` = any
    ``n ≥ 1``."""
    n: ClassVar[int] = 11
    f: ClassVar[int] = 2
    """A valid ``(n, f)`` for the fixed-data checks."""
    permutation_fs: ClassVar[st.SearchStrategy[int]] = st.integers(0, 2)
    """The ``f`` drawn by the permutation check."""
    far_rows_get_zero_weight: ClassVar[bool] = True
    """Whether a rule that ``rejects_far_rows`` gives those rows weight 0 (not only keeps
    them out of the aggregate)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr in dir(cls):
            prop, value = getattr(getattr(cls, attr), "declared", (None, None))
            if prop is not None and getattr(cls.rule, prop) != value:
                setattr(cls, attr, None)  # not collected for this rule

    # ------------------------------------------------------------------------- helpers

    def make(self, **kw: Any) -> Aggregator:
        """The rule with ``params`` (and ``kw``)."""
        return self.rule(**(self.params | kw))

    def run(self, x: torch.Tensor, f: int, seed: int = 0, **kw: Any) -> AggregationResult:
        """The exact rule (``params | exact``) on ``x`` with a full context."""
        return self.make(**self.exact)(x, context(x, f, seed, **kw))

    def honest_box(
        self, x: torch.Tensor, honest: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(lo, hi, margin)`` the aggregate of ``x`` must stay in when the rows of ``x`` outside
        ``honest`` are far away (``rejects_far_rows``): the honest rows' bounding box."""
        return honest.min(dim=0).values, honest.max(dim=0).values, 1e-9

    # ------------------------------------------------------------------------- every rule

    @pytest.mark.parametrize("device", DEVICES)
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_dtype_and_device_preserved(self, dtype: torch.dtype, device: str) -> None:
        x = data(self.n, 7, dtype=dtype).to(device)
        zeros = torch.zeros(7, dtype=dtype, device=device)
        ctx = context(x, self.f, server_update=x.mean(dim=0), global_weights=zeros)
        result = self.make()(x, ctx)
        for t in (result.aggregate, result.weights):
            assert t.dtype == dtype and t.device.type == device
        assert result.aggregate.shape == (7,) and result.weights.shape == (self.n,)

    def test_pure_and_reproducible(self) -> None:
        """The input is not mutated and the same generator seed gives the same output
        (noise, if any, on)."""

        @settings(max_examples=5, deadline=None)
        @given(case=matrices(), seed=st.integers(0, 1000))
        def check(case, seed: int) -> None:
            x, f = case
            before = x.clone()
            a = self.make()(x, context(x, f, seed))
            b = self.make()(x, context(x, f, seed))
            assert torch.equal(x, before)
            assert torch.equal(a.aggregate, b.aggregate) and torch.equal(a.weights, b.weights)
            assert a.weights.shape == (x.shape[0],) and bool((a.weights >= 0).all())

        check()

    @declared("permutation_invariant")
    def test_permutation_invariance(self) -> None:
        """Rows (and their client ids) permuted ⇒ same aggregate, weights permuted."""

        @settings(max_examples=15, deadline=None)
        @given(case=matrices(fs=self.permutation_fs), perm_seed=st.integers(0, 1000))
        def check(case, perm_seed: int) -> None:
            x, f = case
            perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(perm_seed))
            ids = tuple(range(x.shape[0]))
            a = self.run(x, f)
            b = self.run(x[perm], f, client_ids=tuple(ids[i] for i in perm))
            close(a.aggregate, b.aggregate)
            close(a.weights[perm], b.weights)

        check()

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite_rows_are_refused(self, bad: float) -> None:
        x = data(self.n)
        x[1, 3] = bad
        x[4, 0] = bad
        message = f"{self.rule.name}: updates contain NaN/Inf in rows [1, 4]"
        with pytest.raises(ValueError, match=re.escape(message)):
            self.make()(x, context(x, self.f))

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_extreme_finite_rows_give_finite_outputs(self, dtype: torch.dtype) -> None:
        x = data(self.n, dtype=dtype)
        x[0], x[1] = 1e30, -1e30
        x[2, ::2] = 1e30
        result = self.make()(x, context(x, self.f))
        assert bool(torch.isfinite(result.aggregate).all())
        assert bool(torch.isfinite(result.weights).all())

    def test_precondition_errors_name_rule_n_f_and_bound(self) -> None:
        """The smallest valid ``n`` for ``f`` is found by ``check`` itself; one row fewer fails,
        from ``check`` and from a call, with a message naming the rule, n, f and the bound."""
        rule, f = self.make(), self.f

        def valid(n: int) -> bool:
            try:
                rule.check(n, f)
            except ValueError:
                return False
            return True

        ok = [n for n in range(1, 64) if valid(n)]
        assert ok and ok == list(range(ok[0], 64)), "the valid n must be n ≥ some bound"
        assert (self.bound is None) == (ok[0] == 1), "declare the bound text in the test class"
        if self.bound is None:
            return
        n = ok[0] - 1
        for call in (lambda: rule.check(n, f), lambda: rule(data(n), context(data(n), f))):
            with pytest.raises(ValueError) as err:
                call()
            message = str(err.value)
            assert message.startswith(self.rule.name), message
            assert f"n={n}" in message and f"f={f}" in message and self.bound in message

    def test_state_dict_round_trip(self) -> None:
        """A fresh rule that loads the state saved after round 1 gives round 2's result
        (trivially for stateless rules); the saved state is a snapshot."""
        x1, x2 = data(self.n, seed=1), data(self.n, seed=2) + 5
        a = self.make()
        a(x1, context(x1, self.f))
        saved = a.state_dict()
        want = a(x2, context(x2, self.f))
        b = self.make()
        b.load_state_dict(saved)
        got = b(x2, context(x2, self.f))
        assert torch.equal(got.aggregate, want.aggregate) and torch.equal(got.weights, want.weights)

    @declared("deterministic")
    def test_output_does_not_depend_on_the_generator(self) -> None:
        x = data(self.n)
        a = self.make()(x, context(x, self.f, seed=0))
        for ctx in (context(x, self.f, seed=1), context(x, self.f, generator=None)):
            b = self.make()(x, ctx)
            assert torch.equal(a.aggregate, b.aggregate) and torch.equal(a.weights, b.weights)

    @declared("deterministic", False)
    def test_missing_generator_is_an_error(self) -> None:
        x = data(self.n)
        name = self.rule.name
        with pytest.raises(ValueError, match=f"{name}: needs .*generator|{name}: needs a torch"):
            self.make()(x, context(x, self.f, generator=None))

    @declared("needs_server_update")
    def test_missing_server_update_is_an_error(self) -> None:
        x = data(self.n)
        with pytest.raises(ValueError, match=f"{self.rule.name}: needs .*server_update"):
            self.make()(x, context(x, self.f, server_update=None))

    @declared("uses_num_examples", False)
    def test_reported_example_counts_are_ignored(self) -> None:
        x = data(self.n)
        counts = torch.arange(1, self.n + 1, dtype=torch.float32) ** 3
        a = self.make()(x, context(x, self.f))
        b = self.make()(x, context(x, self.f, num_examples=counts))
        assert torch.equal(a.aggregate, b.aggregate)

    # ------------------------------------------------------------------------- declared

    @declared("translation_equivariant")
    def test_translation_equivariance(self) -> None:
        @settings(max_examples=15, deadline=None)
        @given(case=matrices(), shift=st.lists(st.floats(-100, 100), min_size=6, max_size=6))
        def check(case, shift) -> None:
            x, f = case
            t = torch.tensor(shift[: x.shape[1]], dtype=x.dtype)
            close(self.run(x + t, f).aggregate, self.run(x, f).aggregate + t, tol=1e-7)

        check()

    @declared("scale_equivariant")
    def test_positive_scaling(self) -> None:
        @settings(max_examples=15, deadline=None)
        @given(case=matrices(), c=st.floats(0.01, 100))
        def check(case, c: float) -> None:
            x, f = case
            close(self.run(c * x, f).aggregate, c * self.run(x, f).aggregate, tol=1e-7)

        check()

    @declared("unanimous")
    def test_unanimity(self) -> None:
        @settings(max_examples=10, deadline=None)
        @given(case=matrices())
        def check(case) -> None:
            x, f = case
            same = x[:1].expand_as(x).clone()
            close(self.run(same, f).aggregate, same[0])

        check()

    @declared("rejects_far_rows")
    def test_far_rows_are_rejected(self) -> None:
        """f colluding rows (one far point plus jitter) get weight 0 and the aggregate stays in
        :meth:`honest_box`; the honest models share a direction (for FLAME's cosine)."""

        @settings(max_examples=10, deadline=None)
        @given(case=matrices(), far=st.floats(1e3, 1e8), seed=st.integers(0, 1000))
        def check(case, far: float, seed: int) -> None:
            x, f = case
            g = torch.Generator().manual_seed(seed)
            x = x - x.mean(dim=0) + 50.0
            honest = x[f:]
            x = x.clone()
            target = -far * torch.rand(1, x.shape[1], generator=g, dtype=x.dtype)
            x[:f] = target + torch.rand(f, x.shape[1], generator=g, dtype=x.dtype)
            result = self.run(x, f)
            if self.far_rows_get_zero_weight:
                assert bool((result.weights[:f] == 0).all())
            lo, hi, margin = self.honest_box(x, honest)
            out = result.aggregate
            assert bool((lo - margin <= out).all() and (out <= hi + margin).all())

        check()

    @declared("bounded_by_honest")
    def test_bounded_by_the_honest_rows(self) -> None:
        """Whatever f rows say, each coordinate stays within the other rows' range."""

        @settings(max_examples=40, deadline=None)
        @given(
            case=matrices(min_rows_for_f=lambda f: 2 * f + 1),
            byzantine=st.lists(st.floats(-1e12, 1e12), min_size=12, max_size=12),
        )
        def check(case, byzantine) -> None:
            x, f = case
            honest = x[f:]
            x = x.clone()
            x[:f] = torch.tensor(byzantine, dtype=x.dtype)[: f * x.shape[1]].reshape(f, x.shape[1])
            lo, hi = honest.min(dim=0).values, honest.max(dim=0).values
            out = self.run(x, f).aggregate
            assert bool((lo - 1e-9 <= out).all() and (out <= hi + 1e-9).all())

        check()

    @declared("bounded_influence")
    @pytest.mark.parametrize("sign", ["positive", "alternating"])
    def test_huge_rows_do_not_drive_the_aggregate(self, sign: str) -> None:
        """f rows of ±1e30 (the server's own update honest): the aggregate stays finite and
        within 1e6 of the origin, as the honest rows (norm ≈ 2.5) are."""
        x = data(self.n)
        huge = torch.full((self.f, x.shape[1]), 1e30, dtype=x.dtype)
        if sign == "alternating":
            huge[:, 1::2] *= -1
        attacked = torch.cat([huge, x[self.f :]])
        ctx = context(attacked, self.f, server_update=x[self.f :].mean(dim=0))
        out = self.make()(attacked, ctx).aggregate
        assert bool(torch.isfinite(out).all()) and float(out.norm()) < 1e6

    @declared("aggregate_is_weighted_sum")
    @pytest.mark.parametrize("seed", range(3))
    def test_aggregate_is_weights_at_updates(self, seed: int) -> None:
        x = data(self.n, seed=seed)
        result = self.make()(x, context(x, self.f, seed=seed))
        close(result.aggregate, result.weights @ x, tol=1e-10)
