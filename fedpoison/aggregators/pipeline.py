"""A defense = optional pre-aggregators followed by one rule, built from the ``defense`` config.

``Defense(rule, pre)`` runs ``pre`` in order, then ``rule``, and maps the rule's weights back
to clients through the accumulated mixing matrix ``M`` (``(k, n)``, mixed rows = ``M @
updates``): client weights = ``Mᵀ @ rule_weights``. With no pre-aggregator they are the rule's
own weights. Each pre-aggregator tells the next stage how many rows a Byzantine client can
spoil (bucketing: ``min(f, ⌈n/s⌉)``); that ``f`` is what the rule's ``check`` and its
``RoundContext`` see. After a pre-aggregator that forms new rows (bucketing) the rule's
context has no client ids or example counts, since its rows are no longer clients.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from fedpoison.aggregators._common import check_updates
from fedpoison.aggregators.base import (
    AGGREGATORS,
    AggregationResult,
    Aggregator,
    RoundContext,
)
from fedpoison.aggregators.pre import PRE_AGGREGATORS, PreAggregator


class Defense:
    """Pre-aggregators then a rule; returns client-level weights."""

    def __init__(self, rule: Aggregator, pre: Sequence[PreAggregator] = ()) -> None:
        self.rule = rule
        self.pre = tuple(pre)
        mixers = [p.name for p in self.pre if not p.preserves_rows]
        if rule.needs_client_rows and mixers:
            raise ValueError(
                f"{rule.name}: keeps per-client state, so it cannot follow {mixers}, "
                "which replace clients by mixed rows"
            )

    @property
    def name(self) -> str:
        """``"nnm+bucketing+krum"`` style label."""
        return "+".join([p.name for p in self.pre] + [self.rule.name])

    def stages(self, n: int, f: int) -> list[tuple[int, int]]:
        """``(rows, f)`` seen by each pre-aggregator and finally by the rule."""
        seen = [(n, f)]
        for p in self.pre:
            n, f = p.rows(n), p.byzantine_rows(n, f)
            seen.append((n, f))
        return seen

    def check(self, n: int, f: int) -> None:
        """Raise ``ValueError`` (naming the stage, n, f and the bound) when any stage cannot run."""
        seen = self.stages(n, f)
        for p, (rows, byz) in zip(self.pre, seen, strict=False):
            p.check(rows, byz)
        self.rule.check(*seen[-1])

    def __call__(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        n = check_updates(updates, self.name)
        self.check(n, ctx.f)  # every stage's bound, once: the stages below do not re-check
        if not self.pre:
            return self.rule.aggregate(updates, ctx)
        rows, total = updates, torch.eye(n, dtype=updates.dtype, device=updates.device)
        for p in self.pre:
            f = p.byzantine_rows(rows.shape[0], ctx.f)
            rows, mixing = p.mix(rows, ctx)
            total = mixing @ total
            ctx = dataclasses.replace(ctx, f=f)
            if not p.preserves_rows:
                ctx = dataclasses.replace(ctx, client_ids=(), num_examples=None)
        result = self.rule.aggregate(rows, ctx)
        return AggregationResult(result.aggregate, total.T @ result.weights, result.info)

    def state_dict(self) -> dict[str, Any]:
        """The rule's state (pre-aggregators are stateless)."""
        return {"rule": self.rule.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rule.load_state_dict(state.get("rule", {}))


def build_defense(cfg: Mapping[str, Any]) -> tuple[Defense, int | None]:
    """``(Defense, f)`` from the resolved ``defense`` config.

    ``cfg`` holds the rule (``_target_`` and its parameters, or a registered ``name``), plus
    ``f`` (the assumed Byzantine count, ``None`` = let the threat model decide) and ``pre`` (a
    list of names, ``{name: ..., **params}`` dicts or ``_target_`` nodes). Rule and
    pre-aggregators are built by :meth:`~fedpoison.registry.ClassRegistry.build`.
    """
    conf: dict[str, Any]
    if isinstance(cfg, DictConfig):
        conf = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    else:
        conf = copy.deepcopy(dict(cfg))
    f = conf.pop("f", None)
    pre = [
        PRE_AGGREGATORS.build(p, f"defense.pre[{i}]")
        for i, p in enumerate(conf.pop("pre", None) or [])
    ]
    rule = AGGREGATORS.build(conf, "defense")
    return Defense(rule, pre), None if f is None else int(f)
