"""One round's server side as a pipeline of short stages, from validated replies to the new model.

reply policy → f → Δ → adversary → central-DP clip → FLTrust server step → defense → noise
→ step ``w ← w + η·Agg(Δ)`` → finiteness → record. :func:`aggregate_round` runs it;
:class:`ServerPipeline` holds what it needs and the only state that crosses rounds (the
rule's and the privacy mechanism's), which it checkpoints.

A stage that finds the round cannot be aggregated raises :class:`SkipRound`; the round is then
kept unchanged with the reason recorded when ``skip_invalid_rounds`` is set, and stops the run
with a :class:`RoundError` otherwise — never silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from fedpoison.aggregators.base import AggregationResult, RoundContext
from fedpoison.aggregators.flat_model import FlatModel
from fedpoison.aggregators.pipeline import Defense
from fedpoison.finite import all_finite
from fedpoison.privacy.base import Privacy
from fedpoison.records import to_state_dict
from fedpoison.seeding import DEFENSE, PRIVACY, torch_generator
from fedpoison.strategies.adversary import AdversaryStage
from fedpoison.strategies.detection import detection_metrics
from fedpoison.strategies.fltrust_root import RootTrainer
from fedpoison.strategies.plan import Participation, RoundPlan
from fedpoison.strategies.record import ClientIssue, RoundRecord
from fedpoison.strategies.replies import RoundReplies
from fedpoison.training.flat import update_matrix


class RoundError(RuntimeError):
    """A round that cannot be aggregated (and ``skip_invalid_rounds`` is off)."""


class SkipRound(Exception):
    """Raised by a stage: the round cannot be aggregated, for the reason given."""


@dataclass(frozen=True)
class ReplyPolicy:
    """What to do with unusable replies and with rounds that cannot be aggregated.

    Attributes:
        on_invalid: ``reject`` (excluded, recorded), ``zero`` (kept as an unchanged model,
            weight 1) or ``fail`` (stop the run).
        skip_invalid_rounds: keep the global model and record why, instead of stopping.
        partition_sizes: client ``c`` holds ``partition_sizes[c]`` examples, which bounds the
            ``num-examples`` it may report (``None``: unknown, unbounded).
    """

    on_invalid: str = "reject"
    skip_invalid_rounds: bool = False
    partition_sizes: tuple[int, ...] | None = None


@dataclass
class ServerPipeline:
    """The server's part of a round: adversary, privacy, server update, defense and step.

    Attributes:
        defense: pre-aggregators and rule.
        server_lr: η in ``w ← w + η·Agg(Δ)``.
        seed: the run's seed (the defense's and the noise's generators derive from it).
        adversary: the simulated colluding adversary, if the attack crafts updates.
        privacy: central DP's clip and noise (identity without DP).
        root: the FLTrust server step, when the rule needs a server update.
        replies: the reply policy.
        device: where rows are aggregated.
        model: the architecture, for rules that run the clients' models (``needs_model``).
    """

    defense: Defense
    server_lr: float
    seed: int
    adversary: AdversaryStage | None = None
    privacy: Privacy = field(default_factory=Privacy)
    root: RootTrainer | None = None
    replies: ReplyPolicy = field(default_factory=ReplyPolicy)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    model: FlatModel | None = None

    def state_dict(self) -> dict[str, Any]:
        """What crosses rounds: the rule's state, the privacy mechanism's and the update
        attack's (e.g. mimic's chosen client)."""
        attack = {} if self.adversary is None else self.adversary.attack.state_dict()
        return {
            "defense": self.defense.state_dict(),
            "privacy": self.privacy.state_dict(),
            "attack": attack,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.defense.load_state_dict(state["defense"])
        self.privacy.load_state_dict(state.get("privacy", {}))
        if self.adversary is not None:
            self.adversary.attack.load_state_dict(state.get("attack", {}))


@dataclass(frozen=True)
class Rows:
    """The rows the round aggregates, in ascending client id, after the reply policy."""

    client_ids: list[int]
    weights: torch.Tensor
    num_examples: list[int]
    invalid: list[ClientIssue]
    faulty: list[int]


@dataclass(frozen=True)
class RoundOutcome:
    """The new global model (``None``: the round was skipped) and the round's record."""

    new_global: torch.Tensor | None
    record: RoundRecord


def apply_reply_policy(plan: RoundPlan, got: RoundReplies, policy: ReplyPolicy) -> Rows:
    """Rows to aggregate from ``got``; sampled clients that sent nothing are recorded."""
    replied = set(got.client_ids) | {cid for cid, _ in got.invalid} | set(plan.missing)
    silent = [(cid, "no reply") for cid in plan.sampled if cid not in replied]
    invalid = [ClientIssue(cid, why) for cid, why in got.invalid + silent]
    faulty = sorted({cid for cid, _ in got.invalid if cid in plan.sampled})
    if faulty and policy.on_invalid == "fail":
        raise RoundError(
            f"round {plan.server_round}: invalid replies {got.invalid} "
            "(robustness.on_invalid_reply=fail; RobustStrategy: ReplyPolicy(on_invalid='fail'))"
        )
    ids, weights, counts = got.client_ids, got.weights, got.num_examples
    if faulty and policy.on_invalid == "zero":  # a faulty client counts as an unchanged model
        rows = dict(zip(ids, zip(weights, counts, strict=True), strict=True))
        rows.update({cid: (plan.global_flat, 1) for cid in faulty})
        ids = sorted(rows)
        weights = torch.stack([rows[cid][0] for cid in ids])
        counts = [rows[cid][1] for cid in ids]
    return Rows(list(ids), weights, list(counts), invalid, faulty)


def new_record(
    plan: RoundPlan, rows: Rows, got: RoundReplies, participation: Participation
) -> RoundRecord:
    """The round's record before aggregation: who took part, ``f``, what was unusable."""
    n = len(rows.client_ids)
    pool = participation.malicious
    return RoundRecord(
        round=plan.server_round,
        participants=n,
        malicious_participants=sum(cid in pool for cid in rows.client_ids),
        f=participation.assumed_f(n),
        invalid=rows.invalid,
        missing=[ClientIssue(cid, why) for cid, why in sorted(plan.missing.items())],
        invalid_malicious=sum(cid in pool for cid in rows.faulty),
        train_loss=sum(got.train_loss) / len(got.train_loss) if got.train_loss else math.nan,
    )


def check_defense(defense: Defense, n: int, f: int, sampled: int) -> None:
    """:class:`SkipRound` when the defense's bound fails for this round's ``n`` rows."""
    try:
        defense.check(n, f)
    except ValueError as exc:
        raise SkipRound(f"{exc} ({n} valid of {sampled} sampled replies)") from None


def attacked_updates(
    plan: RoundPlan,
    rows: Rows,
    malicious: torch.Tensor,
    f: int,
    server: ServerPipeline,
    global_weights: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Δ (n, d), example counts (n,))`` on the server's device, the adversary's rows in;
    ``global_weights`` is ``plan.global_flat`` on that device."""
    updates = update_matrix(rows.weights, plan.global_flat).to(server.device)
    counts = torch.tensor(rows.num_examples, dtype=torch.float64, device=server.device)
    if server.adversary is None:
        return updates, counts
    attacked = server.adversary(
        updates, counts, malicious, global_weights, f, plan.server_round, rows.client_ids
    )
    return attacked.updates, attacked.num_examples


def round_context(
    plan: RoundPlan,
    rows: Rows,
    counts: torch.Tensor,
    f: int,
    server: ServerPipeline,
    global_weights: torch.Tensor,
) -> RoundContext:
    """What the rule is told: ``f``, ids, counts, its generator, the server update."""
    server_update = None
    if server.defense.rule.needs_server_update and server.root is not None:
        state = to_state_dict(plan.arrays)
        server_update = server.root.server_update(state, plan.server_round).to(server.device)
    return RoundContext(
        f=f,
        client_ids=tuple(rows.client_ids),
        num_examples=counts,
        generator=torch_generator(server.seed, DEFENSE, plan.server_round, device=server.device),
        server_update=server_update,
        global_weights=global_weights,
        server_round=plan.server_round,
        model=server.model if server.defense.rule.needs_model else None,
    )


def defend(defense: Defense, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
    """The defense's result; :class:`SkipRound` when the rule itself fails (e.g. its own
    state overflowed under 1e38 updates)."""
    try:
        return defense(updates, ctx)
    except ValueError as exc:
        raise SkipRound(f"{defense.name} failed: {exc}") from None


def step(
    plan: RoundPlan,
    aggregate: torch.Tensor,
    n: int,
    server: ServerPipeline,
    global_weights: torch.Tensor,
) -> torch.Tensor:
    """Central-DP noise, then ``w ← w + η·aggregate``; :class:`SkipRound` if not finite."""
    noise = torch_generator(server.seed, PRIVACY, plan.server_round, device=server.device)
    noisy = server.privacy.noise(aggregate, n, noise)
    new_global = global_weights + server.server_lr * noisy.to(global_weights.dtype)
    if not all_finite(new_global):
        raise SkipRound(f"{server.defense.name} produced a non-finite aggregate")
    return new_global


def aggregate_round(
    plan: RoundPlan, got: RoundReplies, participation: Participation, server: ServerPipeline
) -> RoundOutcome:
    """Validated replies of ``plan``'s round → the new global vector and the round's record."""
    rows = apply_reply_policy(plan, got, server.replies)
    record = new_record(plan, rows, got, participation)
    pool = participation.malicious
    malicious = torch.tensor([cid in pool for cid in rows.client_ids], dtype=torch.bool)
    global_weights = plan.global_flat.to(server.device)  # once per round, not per stage
    try:
        check_defense(server.defense, record.participants, record.f, len(plan.sampled))
        updates, counts = attacked_updates(
            plan, rows, malicious.to(server.device), record.f, server, global_weights
        )
        updates, privacy_info = server.privacy.clip(updates)  # every row the server receives
        ctx = round_context(plan, rows, counts, record.f, server, global_weights)
        result = defend(server.defense, updates, ctx)
        new_global = step(plan, result.aggregate, record.participants, server, global_weights)
    except SkipRound as skip:
        if not server.replies.skip_invalid_rounds:
            raise RoundError(
                f"round {plan.server_round}: {skip}; "
                "set robustness.skip_invalid_rounds=true to skip such rounds "
                "(RobustStrategy: replies=ReplyPolicy(skip_invalid_rounds=True))"
            ) from None
        record.skipped = str(skip)
        return RoundOutcome(None, record)
    rejected = result.rejected
    record.clients, record.weights = list(rows.client_ids), result.weights.tolist()
    record.rejected = [cid for cid, r in zip(rows.client_ids, rejected.tolist(), strict=True) if r]
    record.detection = detection_metrics(rejected, malicious)
    record.defense_info = dict(result.info)
    record.privacy_info = privacy_info
    return RoundOutcome(new_global, record)
