"""RobustStrategy: the single Flower ``Strategy`` adapter for every rule and attack.

One round, top to bottom: sample clients (seeded by round) → send the global model →
collect replies → validate and order them by client id → build the ``(n, d)`` update matrix
→ adversary stage (malicious rows replaced by the update attack) → central-DP clipping (when
``privacy=central``) → FLTrust server step if the rule wants it → defense (pre-aggregators +
rule) → central-DP noise → ``w ← w + η·aggregate`` → evaluate → record (with ε spent).

Faulty replies (errors, malformed or non-finite arrays, impossible ``num-examples``) follow
``on_invalid_reply``: ``reject`` (excluded, recorded), ``zero`` (kept as an unchanged model,
weight 1) or ``fail``. A round left with too few rows for the defense's bound raises, or is
skipped with the reason recorded when ``skip_invalid_rounds`` is set — never silently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.pipeline import Defense
from fedpoison.finite import all_finite
from fedpoison.privacy.base import Privacy
from fedpoison.records import to_state_dict
from fedpoison.seeding import DEFENSE, PRIVACY, torch_generator
from fedpoison.strategies.adversary import AdversaryStage
from fedpoison.strategies.availability import Availability
from fedpoison.strategies.detection import detection_metrics
from fedpoison.strategies.discovery import node_partitions
from fedpoison.strategies.fltrust_root import RootTrainer
from fedpoison.strategies.replies import collect_replies
from fedpoison.strategies.sampling import sample_clients
from fedpoison.strategies.updates import ModelLayout, flatten, unflatten, update_matrix


class RoundError(RuntimeError):
    """A round that cannot be aggregated (and ``skip_invalid_rounds`` is off)."""


RoundCallback = Callable[[dict[str, Any], ArrayRecord], None]


@dataclass(frozen=True)
class Participation:
    """How many of ``num_clients`` train each round and how ``f`` follows from it."""

    num_clients: int
    clients_per_round: int
    malicious: frozenset[int]
    defense_f: int | None = None

    def assumed_f(self, n: int) -> int:
        """The defense's ``f`` for a round with ``n`` usable rows.

        ``defense.f`` when set (to study misspecification); otherwise the malicious pool
        scaled to the round, ``⌈|pool| · n / num_clients⌉`` — the expected number of
        malicious participants, rounded up (equal to ``|pool|`` with full participation).
        """
        if self.defense_f is not None:
            return self.defense_f
        return math.ceil(len(self.malicious) * n / self.num_clients - 1e-9)


class RobustStrategy(Strategy):
    """Samples, attacks (as the simulated adversary), defends and records each round."""

    def __init__(
        self,
        *,
        participation: Participation,
        defense: Defense,
        adversary: AdversaryStage | None,
        evaluate_fn: Callable[[ArrayRecord], dict[str, float]],
        train_config: dict[str, float | int],
        server_lr: float,
        seed: int,
        root_trainer: RootTrainer | None = None,
        on_round: RoundCallback | None = None,
        device: torch.device | str = "cpu",
        on_invalid_reply: str = "reject",
        skip_invalid_rounds: bool = False,
        partition_sizes: list[int] | None = None,
        availability: Availability | None = None,
        privacy: Privacy | None = None,
    ) -> None:
        self.participation = participation
        self.defense = defense
        self.adversary = adversary
        self.evaluate_fn = evaluate_fn
        self.train_config = train_config
        self.server_lr = server_lr
        self.seed = seed
        self.root_trainer = root_trainer
        self.on_round = on_round
        self.device = torch.device(device)
        self.on_invalid_reply = on_invalid_reply
        self.skip_invalid_rounds = skip_invalid_rounds
        self.partition_sizes = partition_sizes
        self.availability = availability or Availability()
        self.privacy = privacy or Privacy()
        self._missing: dict[int, str] = {}
        self.history: list[dict[str, Any]] = []
        self._client_of_node: dict[int, int] = {}
        self._node_of_client: dict[int, int] = {}
        self._sampled: list[int] = []
        self._global: ArrayRecord | None = None
        self._global_cpu = torch.zeros(0)
        self._round: dict[str, Any] = {}

    # -- Flower Strategy API ----------------------------------------------------------
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self._global = arrays
        self._global_cpu = flatten(arrays, ModelLayout.of(arrays))
        self._sampled = sample_clients(
            self._node_of_client, self.participation.clients_per_round, self.seed, server_round
        )
        self._missing = self.availability.missing(self._sampled, self.seed, server_round)
        # one payload shared by every message, as Flower's own strategies do
        content = RecordDict(
            {"arrays": arrays, "config": ConfigRecord({**config, "server-round": server_round})}
        )
        return [
            Message(content, self._node_of_client[cid], "train", group_id=str(server_round))
            for cid in self._sampled
            if cid not in self._missing
        ]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        assert self._global is not None, "configure_train must run first"
        layout = ModelLayout.of(self._global)
        global_flat = self._global_cpu.to(self.device)
        got = collect_replies(
            replies, self._client_of_node, set(self._sampled), layout, self.partition_sizes
        )
        replied = set(got.client_ids) | {cid for cid, _ in got.invalid} | set(self._missing)
        invalid = got.invalid + [(cid, "no reply") for cid in self._sampled if cid not in replied]
        faulty = sorted({cid for cid, why in got.invalid if cid in self._sampled})
        if faulty and self.on_invalid_reply == "fail":
            raise RoundError(
                f"round {server_round}: invalid replies {got.invalid} (robustness.on_invalid_reply=fail)"
            )
        ids, weights, counts_list = got.client_ids, got.weights, got.num_examples
        if (
            faulty and self.on_invalid_reply == "zero"
        ):  # a faulty client counts as an unchanged model
            rows = dict(zip(ids, zip(weights, counts_list, strict=True), strict=True))
            rows.update({cid: (self._global_cpu, 1) for cid in faulty})
            ids = sorted(rows)
            weights = torch.stack([rows[cid][0] for cid in ids])
            counts_list = [rows[cid][1] for cid in ids]
        n = len(ids)
        f = self.participation.assumed_f(n)
        malicious = torch.tensor(
            [cid in self.participation.malicious for cid in ids], dtype=torch.bool
        )
        self._round = {
            "participants": n,
            "malicious_participants": int(malicious.sum()),
            "f": f,
            "invalid": [{"client": cid, "reason": why} for cid, why in invalid],
            "missing": [
                {"client": cid, "reason": why} for cid, why in sorted(self._missing.items())
            ],
            "invalid_malicious": sum(cid in self.participation.malicious for cid in faulty),
            "train_loss": sum(got.train_loss) / len(got.train_loss) if got.train_loss else math.nan,
        }
        try:
            self.defense.check(n, f)
        except ValueError as exc:
            return self._skip(
                server_round, f"{exc} ({n} valid of {len(self._sampled)} sampled replies)"
            )
        updates = update_matrix(weights, self._global_cpu).to(self.device)
        counts = torch.tensor(counts_list, dtype=torch.float64, device=self.device)
        malicious = malicious.to(self.device)
        if self.adversary is not None:
            attacked = self.adversary(updates, counts, malicious, global_flat, f, server_round)
            updates, counts = attacked.updates, attacked.num_examples
        updates, privacy_info = self.privacy.clip(updates)  # central DP clips every row it receives
        server_update = None
        if self.defense.rule.needs_server_update and self.root_trainer is not None:
            server_update = self.root_trainer.server_update(
                to_state_dict(self._global), server_round
            )
            server_update = server_update.to(self.device)
        ctx = RoundContext(
            f=f,
            client_ids=tuple(ids),
            num_examples=counts,
            generator=torch_generator(self.seed, DEFENSE, server_round, device=self.device),
            server_update=server_update,
            global_weights=global_flat,
            server_round=server_round,
        )
        try:
            result = self.defense(updates, ctx)
        except ValueError as exc:  # e.g. a rule's own state overflowed under 1e38 updates
            return self._skip(server_round, f"{self.defense.name} failed: {exc}")
        noise = torch_generator(self.seed, PRIVACY, server_round, device=self.device)
        aggregate = self.privacy.noise(result.aggregate, n, noise)
        new_global = global_flat + self.server_lr * aggregate.to(global_flat.dtype)
        if not all_finite(new_global):
            return self._skip(server_round, f"{self.defense.name} produced a non-finite aggregate")
        self._round.update(
            rejected=[cid for cid, r in zip(ids, result.rejected.tolist(), strict=True) if r],
            **detection_metrics(result.rejected, malicious),
            **{f"defense_{k}": v for k, v in result.info.items()},
            **privacy_info,
        )
        metrics = MetricRecord({"participants": n, "rejected": len(self._round["rejected"])})
        return unflatten(new_global, layout), metrics

    def _skip(self, server_round: int, reason: str) -> tuple[ArrayRecord | None, MetricRecord]:
        """Keep the global model and record why — or stop, unless ``skip_invalid_rounds``."""
        if not self.skip_invalid_rounds:
            raise RoundError(
                f"round {server_round}: {reason}; set robustness.skip_invalid_rounds=true to skip such rounds"
            )
        self._round.update(skipped=reason, rejected=[])
        return self._global, MetricRecord(
            {"participants": self._round["participants"], "skipped": 1}
        )

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return []  # evaluation is centralised on the server's held-out test set

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return None

    def summary(self) -> None:
        """Flower calls this at start; fedpoison's summary is printed by the CLI."""

    # -- driver -----------------------------------------------------------------------
    def start(  # type: ignore[override]
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        first_round: int = 1,
        eval_every: int = 1,
    ) -> Result:
        """Run rounds ``first_round..num_rounds`` from ``initial_arrays``; each round's record
        and new global model go to ``on_round`` (``first_round > 1`` resumes a run).

        The global model is evaluated after rounds that are multiples of ``eval_every`` and
        after the last round; other rounds' records carry no accuracy/loss."""
        self._client_of_node = node_partitions(grid, self.participation.num_clients)
        self._node_of_client = {cid: node for node, cid in self._client_of_node.items()}
        config = ConfigRecord(self.train_config) if train_config is None else train_config
        result = Result()
        arrays = initial_arrays
        for server_round in range(first_round, num_rounds + 1):
            t0 = time.perf_counter()
            replies = grid.send_and_receive(
                self.configure_train(server_round, arrays, config, grid), timeout=timeout
            )
            t1 = time.perf_counter()
            new_arrays, _ = self.aggregate_train(server_round, replies)
            t2 = time.perf_counter()
            arrays = new_arrays if new_arrays is not None else arrays
            due = server_round % eval_every == 0 or server_round == num_rounds
            evaluation = self.evaluate_fn(arrays) if due else {}
            record = {
                "round": server_round,
                **evaluation,
                **self._round,
                **self.privacy.spent(server_round),
                "train_s": t1 - t0,
                "aggregate_s": t2 - t1,
                "eval_s": time.perf_counter() - t2,
            }
            self.history.append(record)
            if evaluation:
                result.evaluate_metrics_serverapp[server_round] = MetricRecord(dict(evaluation))
            if self.on_round is not None:
                self.on_round(record, arrays)
        result.arrays = arrays
        return result
