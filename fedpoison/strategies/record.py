"""The typed record of one round: what ``results.json``, ``metrics.csv`` and the loggers read.

:meth:`RoundRecord.to_dict` is the one place a round becomes the row stored in
``results.json["rounds"]`` (and a line of ``metrics.csv``, whose columns follow its key order).
Optional parts are absent from the row when they did not happen: no ``accuracy`` in a round
that was not evaluated, no detection counts in a skipped round, no ``epsilon`` without DP.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

MetricValue = int | float | list[int] | list[float]
"""A value of a Flower ``MetricRecord``."""


@dataclass(frozen=True)
class ClientIssue:
    """A sampled client whose reply was not used, and why."""

    client: int
    reason: str


@dataclass(frozen=True)
class RoundTiming:
    """Wall-clock seconds of the round's phases (machine-dependent, left out of goldens).

    ``train_s`` (configure, send, clients train, replies back), ``aggregate_s`` and ``eval_s``
    are measured by the strategy; ``write_s`` (persisting the round: its journal line, and a
    checkpoint when one is due) by the recorder once it has written them, so it is ``None``
    until then and absent from a row that has none.
    """

    train_s: float
    aggregate_s: float
    eval_s: float
    write_s: float | None = None


@dataclass
class RoundRecord:
    """One round, from sampling to evaluation.

    Attributes:
        round: 1-based round number.
        participants: rows the defense aggregated (``n``).
        malicious_participants: how many of them belong to the malicious pool.
        f: the defense's assumed Byzantine count for those ``n`` rows.
        invalid: sampled clients whose replies were unusable (errors, malformed, no reply).
        missing: sampled clients the simulated dropouts and stragglers kept out.
        invalid_malicious: malicious clients among the unusable replies.
        train_loss: mean reported training loss of the usable replies that report one (a
            malicious client that skipped its training reports none; NaN when none do).
        rejected: client ids the defense gave zero weight.
        skipped: why the global model was kept unchanged, for a skipped round.
        detection: ``tp, fp, fn, tn, precision, recall, fpr`` of the rejections.
        defense_info: the rule's own diagnostics (``defense_<key>`` in the row).
        privacy_info: central DP's clipping diagnostics.
        evaluation: ``accuracy``, ``loss`` (and ``asr``) when the round was evaluated.
        federated: the clients' evaluation metrics averaged by ``num-examples`` (federated
            evaluation; ``federated_<key>`` in the row).
        spent: ``epsilon`` and ``delta`` after this round under DP.
        timing: the phases' wall-clock seconds.
        clients: the aggregated rows' client ids, ascending (kept in memory, not in the row).
        weights: the defense's weight of each of those clients (0 = rejected; in memory).
    """

    round: int
    participants: int
    malicious_participants: int
    f: int
    invalid: list[ClientIssue]
    missing: list[ClientIssue]
    invalid_malicious: int
    train_loss: float = math.nan
    rejected: list[int] = field(default_factory=list)
    skipped: str | None = None
    detection: dict[str, float] = field(default_factory=dict)
    defense_info: dict[str, float] = field(default_factory=dict)
    privacy_info: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, MetricValue] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)
    timing: RoundTiming | None = None
    federated: dict[str, MetricValue] = field(default_factory=dict)
    clients: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The ``results.json`` row, keys in their published order."""
        row: dict[str, Any] = {
            "round": self.round,
            **self.evaluation,
            **{f"federated_{k}": v for k, v in self.federated.items()},
            "participants": self.participants,
            "malicious_participants": self.malicious_participants,
            "f": self.f,
            "invalid": [{"client": i.client, "reason": i.reason} for i in self.invalid],
            "missing": [{"client": i.client, "reason": i.reason} for i in self.missing],
            "invalid_malicious": self.invalid_malicious,
            "train_loss": self.train_loss,
        }
        if self.skipped is not None:
            row["skipped"] = self.skipped
        row["rejected"] = list(self.rejected)
        row |= self.detection
        row |= {f"defense_{k}": v for k, v in self.defense_info.items()}
        row |= self.privacy_info
        row |= self.spent
        if self.timing is not None:
            row |= {k: v for k, v in vars(self.timing).items() if v is not None}
        return row
