"""The contract between the strategy and every aggregation rule.

Functional core: each rule is a pure function on an ``(n, d)`` float tensor of client
updates (row i = i-th participating client in ascending client id). The thin classes here
wrap those functions for configuration, registry and detection metrics: they return the
aggregate **and** a per-client weight vector (0 = rejected).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from fedpoison.aggregators.flat_model import FlatModel
from fedpoison.registry import ClassRegistry


@dataclass(frozen=True)
class RoundContext:
    """What the strategy tells a rule about the round; never who is malicious.

    Attributes:
        f: the defense's assumed number of Byzantine clients among the ``n`` rows.
        client_ids: partition ids of the rows, ascending (for rules with per-client history).
        num_examples: client-reported example counts ``(n,)``; robust rules ignore them.
        generator: the only randomness a rule may use (seeded per round by the strategy).
        server_update: FLTrust's root-set update ``(d,)`` when the rule asks for it.
        global_weights: flat current global model ``(d,)`` (FLAME clusters models, not deltas).
        server_round: 1-based round number.
        model: the network the rows are deltas of, as a function of its flat parameters
            (DeepSight runs the clients' models); set only for rules with ``needs_model``.
    """

    f: int
    client_ids: tuple[int, ...]
    num_examples: torch.Tensor | None = None
    generator: torch.Generator | None = None
    server_update: torch.Tensor | None = None
    global_weights: torch.Tensor | None = None
    server_round: int = 1
    model: FlatModel | None = None


ROOT_PROCEDURES = ("clients", "official")


@dataclass(frozen=True)
class RootSet:
    """Labelled data the server holds itself and how it trains on it each round (FLTrust's
    root dataset, Cao et al., NDSS 2021, §III-B and Alg. 2).

    Attributes:
        size: examples drawn from the training set (the paper's |D_0| = 100).
        bias: fraction of them drawn from class 0 (the paper's root-set bias p); ``None``
            draws uniformly.
        procedure: ``clients`` = exactly the clients' local procedure (Alg. 2); ``official``
            = the official MXNet code's step: the whole root set as one batch, sum of losses.
    """

    size: int = 100
    bias: float | None = None
    procedure: str = "clients"

    def __post_init__(self) -> None:
        if self.procedure not in ROOT_PROCEDURES:
            raise ValueError(
                f"defense.root.procedure must be one of {', '.join(ROOT_PROCEDURES)}, "
                f"got {self.procedure!r}"
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"defense.root.size must be an integer ≥ 1, got {self.size!r}")
        if self.bias is not None and not 0.0 <= self.bias <= 1.0:
            raise ValueError(f"defense.root.bias must be in [0, 1] or null, got {self.bias}")


@dataclass(frozen=True)
class AggregationResult:
    """The aggregate ``(d,)`` and per-client weights ``(n,)`` (0 = rejected)."""

    aggregate: torch.Tensor
    weights: torch.Tensor
    info: dict[str, float] = field(default_factory=dict)

    @property
    def rejected(self) -> torch.Tensor:
        """Boolean mask ``(n,)`` of rows given zero weight."""
        return self.weights <= 0


class Aggregator(ABC):
    """Base class of every configurable rule (``defense=<name>``).

    Subclasses set the class attributes (used for the README catalogue) and implement
    :meth:`check` (precondition on ``n`` and ``f``, raising ``ValueError`` that names the rule,
    ``n``, ``f`` and the bound) and :meth:`aggregate`. Stateful rules (centered clipping,
    FoolsGold) keep their state on the instance and expose it via ``state_dict``.
    """

    name: ClassVar[str]  # set by @AGGREGATORS.register(name)
    paper: ClassVar[str]
    requirement: ClassVar[str] = "n ≥ 1"
    needs_server_update: ClassVar[bool] = False
    root: RootSet | None = None
    """The root set the server trains on for ``ctx.server_update`` (rules that need one)."""
    needs_model: ClassVar[bool] = False
    """True when the rule reads ``ctx.model`` (the architecture, to run the clients' models)."""
    needs_client_rows: ClassVar[bool] = False
    """True when row i must be client i (per-client state keyed by ``ctx.client_ids``), so
    pre-aggregators that mix clients into new rows (bucketing) cannot precede the rule."""

    # Declared properties: what the rule guarantees with its default parameters (noise-free
    # where it has noise). ``tests/aggregators/rule_tester.py`` checks each one it declares.
    permutation_invariant: ClassVar[bool] = True
    """Rows permuted with their client ids ⇒ the same aggregate, weights permuted alike."""
    translation_equivariant: ClassVar[bool] = False
    """``rule(x + t) == rule(x) + t`` for every shift ``t`` ``(d,)`` (the server update
    shifted alike)."""
    scale_equivariant: ClassVar[bool] = False
    """``rule(c·x) == c·rule(x)`` for every ``c > 0`` (the server update and the global model
    scaled alike)."""
    unanimous: ClassVar[bool] = True
    """All rows equal ⇒ the aggregate is that row, whatever the parameters and context."""
    rejects_far_rows: ClassVar[bool] = False
    """A selecting rule: ``f`` colluding rows far from an honest cluster get weight 0 and the
    aggregate stays in the honest rows' bounding box."""
    bounded_by_honest: ClassVar[bool] = False
    """Whatever ``f`` rows say, each coordinate of the aggregate lies within the range of the
    other rows' values."""
    bounded_influence: ClassVar[bool] = True
    """``f`` huge finite rows (1e30) cannot drive the aggregate: it stays finite and small."""
    aggregate_is_weighted_sum: ClassVar[bool] = False
    """The aggregate is exactly ``weights @ updates``."""
    deterministic: ClassVar[bool] = True
    """Draws nothing from ``ctx.generator`` (the output does not depend on it, and ``None``
    is accepted); ``False``: the rule needs the generator."""
    uses_num_examples: ClassVar[bool] = False
    """Reads the client-reported ``ctx.num_examples`` (only FedAvg: clients control them)."""

    def check(self, n: int, f: int) -> None:
        """Raise ``ValueError`` when the rule cannot run on ``n`` rows with ``f`` assumed
        Byzantine."""
        if n < 1:
            raise ValueError(f"{self.name}: needs n ≥ 1 rows, got n={n}, f={f}")

    @abstractmethod
    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        """Aggregate one round's update matrix.

        Called through ``__call__``, which runs :meth:`check` on ``(n, ctx.f)`` first. The
        strategy catches a ``ValueError`` from here and records the round as skipped with its
        message, so raise one (naming the rule) rather than return a non-finite aggregate.

        Args:
            updates: the ``(n, d)`` floating update matrix of docs/conventions.md §C1
                (float32 from the strategy; rules must also accept float64), row ``i`` =
                ``Δ_i = w_i − w_global`` of the ``i``-th participant in ascending client id
                (or, after a mixing pre-aggregator, the ``i``-th mixed row). It may contain
                NaN/Inf: validate with :func:`~fedpoison.aggregators._common.check_updates`
                (or pass it through ``checked``) before relying on it. Must not be modified
                in place, nor kept beyond the call (copy what is stored as state).
            ctx: what the strategy tells the rule about the round (frozen, must not be
                mutated): ``ctx.f`` is the Byzantine count *this stage* must tolerate (it can
                differ from the declared ``f`` after a pre-aggregator), never who is
                malicious; ``ctx.client_ids`` is empty and ``ctx.num_examples`` ``None``
                after a pre-aggregator that mixes clients; ``ctx.generator`` is the only
                randomness allowed; ``ctx.server_update`` is set only when
                :attr:`needs_server_update`.

        Returns:
            An :class:`AggregationResult` whose ``aggregate`` is the ``(d,)`` update the
            server adds as ``w ← w + η·aggregate`` (same dtype and device as ``updates``),
            whose ``weights`` ``(n,)`` (same dtype and device) give each row's coefficient, 0 for
            a rejected row (these drive the detection metrics), and whose ``info`` holds
            ``float`` diagnostics recorded per round as ``defense_<key>`` (e.g.
            ``{"skipped": 1.0}`` when the rule deliberately returns a zero aggregate).

        Raises:
            ValueError: malformed or non-finite ``updates``, a precondition on ``n``/``f``
                that :meth:`check` did not cover, or a ``ctx`` field the rule needs but
                did not get (e.g. ``server_update``, ``generator``).
        """

    def __call__(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        self.check(updates.shape[0], ctx.f)
        return self.aggregate(updates, ctx)

    def state_dict(self) -> dict[str, Any]:
        """State carried across rounds (for checkpoints); empty for stateless rules."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 (no-op default)
        """Restore what :meth:`state_dict` returned."""


AGGREGATORS: ClassRegistry[Aggregator] = ClassRegistry("defense", Aggregator)
