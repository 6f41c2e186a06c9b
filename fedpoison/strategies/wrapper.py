"""``fedpoison.Adversary``: the colluding adversary around any Flower strategy.

The wrapper sits between Flower's loop (:meth:`flwr.serverapp.strategy.Strategy.start`) and
the strategy it wraps: it passes every call through, except that before the wrapped
``aggregate_train`` sees a round's replies it replaces the malicious nodes' models with what
an :class:`~fedpoison.attacks.base.UpdateAttack` crafts from the view the threat model grants.
Around fedpoison's own :class:`~fedpoison.strategies.robust.RobustStrategy` it attaches to the
round pipeline instead, so the attack sees the exact update rows, ``f`` and (when allowed) the
defense.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from logging import INFO, WARNING
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy
from flwr.supercore import log

from fedpoison.attacks import UPDATE_ATTACKS, UpdateAttack
from fedpoison.attacks.spec import AttackSpec, check_attack
from fedpoison.attacks.threat import KNOWLEDGE_ORDER, Knowledge, ThreatModel
from fedpoison.finite import all_finite
from fedpoison.protocol import NUM_EXAMPLES
from fedpoison.seeding import MALICIOUS_POOL, numpy_rng
from fedpoison.strategies.adversary import AdversaryStage
from fedpoison.strategies.robust import EvaluateFn, RobustStrategy
from fedpoison.training.flat import ModelLayout, flatten, unflatten


class Adversary(Strategy):
    """Wrap any Flower ``Strategy`` so that its malicious nodes collude through ``attack``.

    Each training round, the wrapper decodes the replies into deltas
    ``Δ_i = w_i − w_global`` (float32, ascending node id), builds the
    :class:`~fedpoison.attacks.base.AdversaryView` fedpoison's threat model grants
    (:func:`~fedpoison.attacks.spec.build_view`: the malicious nodes' own honest deltas, plus
    every benign delta under ``knowledge="all"``), calls ``attack.craft`` and replaces each
    malicious reply's model with ``w_global + crafted row`` (and its ``num-examples`` when the
    attack reports counts) before the wrapped strategy aggregates. This is the colluding
    adversary of the poisoning papers: omniscient (``knowledge="all"``, e.g. ALIE, Baruch et
    al. 2019; Fang et al. 2020; min-max/min-sum, Shejwalkar & Houmansadr 2021) or knowing only
    its own updates (``knowledge="own"``). The wrapped strategy is not told which nodes are
    malicious; rounds without a malicious reply, or outside ``start_round..end_round``, pass
    through unchanged.

    Around a :class:`~fedpoison.strategies.robust.RobustStrategy` the adversary attaches to
    its round pipeline instead of rewriting replies: the attack sees the exact rows the
    defense will aggregate, the round's ``f`` and, with ``knows_defense=True``, the defense
    itself (so defense-aware attacks such as Fang's work); the ids below are then the
    strategy's client ids, which it also uses to score detection. fedpoison's CLI runs its
    update attacks this way.

    Which nodes are malicious: ``malicious`` names them; with ``num_malicious`` they are
    drawn once, the first time the grid (``configure_train``) or a round's replies are seen,
    as a seeded choice among the sorted ids (the same draw as the CLI's
    ``threat.num_malicious`` over client ids ``0..N-1``). On fedpoison's engines node ids are
    partition id + 1, so the choice is a function of ``seed``; Flower's simulation engine
    draws random node ids, so there ``seed`` fixes the choice only given those node ids
    (read :attr:`malicious_nodes` after the run, or pass ``malicious``).

    Args:
        strategy: the Flower strategy to wrap (``FedAvg``, ``FedTrimmedAvg``, ``Krum``,
            ``Bulyan``, ... or fedpoison's own); it does all the sampling and aggregation.
        attack: an :class:`~fedpoison.attacks.base.UpdateAttack` instance or a registered
            name (``"alie"``, ``"sign_flip"``, ``"ipm"``, ``"min_max"``, ...).
        malicious: the malicious node ids.
        num_malicious: how many nodes are malicious (exactly one of the two is given).
        knowledge: ``"all"`` (the adversary sees every reply) or ``"own"``.
        knows_defense: whether the attack is told the defense; only a
            ``RobustStrategy``'s can be told (a Flower strategy is not a fedpoison rule, so
            attacks that need the defense are refused around one).
        start_round, end_round: the adversary acts in rounds ``start_round ≤ r ≤ end_round``
            (``end_round=None``: until the end).
        server_lr: the server learning rate η the attack may assume (FedAvg: 1.0; around a
            ``RobustStrategy``, its own ``server_lr``).
        seed: seeds the malicious draw and the attack's generator
            (``torch_generator(seed, ADVERSARY, round)``).

    Attributes:
        malicious_nodes: the malicious ids (empty until drawn with ``num_malicious``).
        history: one ``{"round", "malicious_replies"}`` per training round: the sorted ids
            whose replies were replaced (crafted).

    Raises:
        ValueError: neither or both of ``malicious``/``num_malicious``, an unknown
            ``knowledge``, or an attack that needs more than the threat model grants.

    Example:

        >>> from flwr.serverapp.strategy import FedAvg
        >>> from fedpoison import Adversary
        >>> adversary = Adversary(FedAvg(), "sign_flip", malicious=[1, 2])
        >>> sorted(adversary.malicious_nodes), adversary.attack.name
        ([1, 2], 'sign_flip')

        In a ServerApp's ``@app.main()``, call ``start`` as on any Flower strategy::

            result = Adversary(FedAvg(), ALIE(), num_malicious=2).start(
                grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=3
            )
    """

    def __init__(
        self,
        strategy: Strategy,
        attack: UpdateAttack | str,
        *,
        malicious: Iterable[int] | None = None,
        num_malicious: int | None = None,
        knowledge: Knowledge = "all",
        knows_defense: bool = False,
        start_round: int = 1,
        end_round: int | None = None,
        server_lr: float = 1.0,
        seed: int = 0,
    ) -> None:
        if not isinstance(strategy, Strategy):
            raise TypeError(f"Adversary wraps a Flower Strategy, got {type(strategy).__name__}")
        if (malicious is None) == (num_malicious is None):
            raise ValueError(
                "Adversary needs exactly one of malicious= (node ids) or num_malicious= (a count)"
            )
        if num_malicious is not None and (isinstance(num_malicious, bool) or num_malicious < 0):
            raise ValueError(f"Adversary: num_malicious must be ≥ 0, got {num_malicious!r}")
        if knowledge not in KNOWLEDGE_ORDER:
            raise ValueError(f"Adversary: knowledge must be 'own' or 'all', got {knowledge!r}")
        self.strategy = strategy
        self.attack = _build_attack(attack)
        self.threat = ThreatModel(
            knowledge=knowledge,
            knows_defense=knows_defense,
            start_round=start_round,
            end_round=end_round,
        )
        check_attack(AttackSpec(self.attack.name, None, self.attack), self.threat)
        self.num_malicious = num_malicious
        self.seed = int(seed)
        self.malicious_nodes: frozenset[int] = frozenset(int(i) for i in malicious or ())
        self._history: list[dict[str, Any]] = []
        self._global: ArrayRecord | None = None
        self._stage = self._new_stage(float(server_lr))

    def _new_stage(self, server_lr: float) -> AdversaryStage:
        """The crafting stage; attached to the round pipeline of a ``RobustStrategy``."""
        strategy = self.strategy
        if isinstance(strategy, RobustStrategy):
            self.attack.check_defense(strategy.defense)
            stage = AdversaryStage(
                self.attack, self.threat, strategy.defense, strategy.server.server_lr, self.seed
            )
            strategy.attach(stage, self._choose)
            return stage
        if self.attack.requires_defense():
            raise ValueError(
                f"attack {self.attack.name} needs the defense as a fedpoison rule, which a "
                "wrapped Flower strategy is not; choose an attack that does not need it"
            )
        return AdversaryStage(self.attack, self.threat, None, server_lr, self.seed)

    @property
    def attached(self) -> bool:
        """Whether the attack runs inside a ``RobustStrategy``'s round pipeline."""
        return isinstance(self.strategy, RobustStrategy)

    @property
    def history(self) -> list[dict[str, Any]]:
        """``{"round", "malicious_replies"}`` per training round (see the class docstring)."""
        if not isinstance(self.strategy, RobustStrategy):
            return self._history
        return [
            {
                "round": r.round,
                "malicious_replies": [c for c in r.clients if c in self.malicious_nodes]
                if self.threat.active(r.round)
                else [],
            }
            for r in self.strategy.history
        ]

    # -- Strategy API: delegated ------------------------------------------------------
    def summary(self) -> None:
        """Log the adversary, then the wrapped strategy's summary."""
        count = self.num_malicious if self.num_malicious is not None else len(self.malicious_nodes)
        log(
            INFO,
            "\t├──> Adversary: attack %s, %d malicious node(s), knowledge=%s",
            self.attack.name,
            count,
            self.threat.knowledge,
        )
        self.strategy.summary()

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: EvaluateFn | None = None,
    ) -> Result:
        """Flower's ``Strategy.start``; around a ``RobustStrategy``, its own ``start``."""
        run = self.strategy.start if self.attached else super().start
        return run(
            grid, initial_arrays, num_rounds, timeout, train_config, evaluate_config, evaluate_fn
        )

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the round's global model (and draw the malicious nodes), then delegate."""
        if not self.attached:
            self._global = arrays
            self._draw(grid.get_node_ids())
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Delegated unchanged."""
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Delegated unchanged (the adversary attacks training only)."""
        return self.strategy.aggregate_evaluate(server_round, replies)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Replace the malicious replies' models with the attack's, then delegate.

        The received messages are not modified: each malicious reply is replaced in the list
        by a shallow copy carrying a new ``RecordDict``.
        """
        if self.attached:  # the attack runs inside the strategy's round pipeline
            return self.strategy.aggregate_train(server_round, replies)
        received = list(replies)
        self._draw(r.metadata.src_node_id for r in received)
        attacked = self._attack(server_round, received)
        replaced = sorted(m.metadata.src_node_id for m in attacked.values())
        self._history.append({"round": server_round, "malicious_replies": replaced})
        if replaced:
            log(
                INFO,
                "Adversary: round %d, replaced the replies of nodes %s",
                server_round,
                replaced,
            )
        return self.strategy.aggregate_train(
            server_round, [attacked.get(id(r), r) for r in received] if attacked else received
        )

    # -- the attack ---------------------------------------------------------------------
    def _draw(self, node_ids: Iterable[int]) -> None:
        """Choose ``num_malicious`` of ``node_ids`` once (seeded, among the sorted ids)."""
        if self.num_malicious is None or self.malicious_nodes:
            return
        ids = sorted({int(i) for i in node_ids})
        if ids:
            self._choose(ids)

    def _choose(self, ids: Sequence[int]) -> frozenset[int]:
        """The malicious ids among ``ids``: as given, or ``num_malicious`` drawn from the seed
        among the sorted ids (``ThreatModel.malicious_ids``' draw when ids are 0..N-1)."""
        if self.num_malicious is not None and not self.malicious_nodes:
            if self.num_malicious > len(ids):
                raise ValueError(
                    f"Adversary: num_malicious={self.num_malicious} exceeds the {len(ids)} nodes"
                )
            ordered = sorted(ids)
            rng = numpy_rng(self.seed, MALICIOUS_POOL)
            picks = rng.choice(len(ordered), size=self.num_malicious, replace=False)
            self.malicious_nodes = frozenset(ordered[int(i)] for i in picks)
        return self.malicious_nodes

    def _usable(
        self, received: list[Message], layout: ModelLayout
    ) -> list[tuple[Message, torch.Tensor]]:
        """``(reply, flat model)`` of each reply the adversary can decode, ascending node id."""
        key = self._arrays_key
        out = []
        for reply in sorted(received, key=lambda r: r.metadata.src_node_id):
            record = None if reply.has_error() else reply.content.get(key)
            try:
                if not isinstance(record, ArrayRecord):
                    raise TypeError(f"no ArrayRecord under {key!r}")
                flat = flatten(record, layout)
                if not all_finite(flat):
                    raise ValueError("non-finite weights")
            except (ValueError, TypeError, KeyError) as exc:
                # unusable: left out of the view; the wrapped strategy decides what to do
                node = reply.metadata.src_node_id
                if node in self.malicious_nodes and not reply.has_error():
                    log(WARNING, "Adversary: malicious node %d's reply is unusable: %s", node, exc)
                continue
            out.append((reply, flat))
        return out

    def _attack(self, server_round: int, received: list[Message]) -> dict[int, Message]:
        """``{id(original reply): crafted copy}`` for the malicious replies of the round."""
        if self._global is None or not any(
            r.metadata.src_node_id in self.malicious_nodes and not r.has_error() for r in received
        ):
            return {}
        layout = ModelLayout.of(self._global)
        usable = self._usable(received, layout)
        bad = [r.metadata.src_node_id in self.malicious_nodes for r, _ in usable]
        if not any(bad):
            return {}
        global_weights = flatten(self._global, layout)
        deltas = torch.stack([w for _, w in usable]) - global_weights
        crafted = self._stage.craft(deltas, torch.tensor(bad), global_weights, None, server_round)
        if crafted is None:
            return {}
        replies = [r for (r, _), b in zip(usable, bad, strict=True) if b]
        counts = crafted.num_examples
        return {
            id(reply): self._replace(
                reply,
                unflatten(global_weights + crafted.updates[j].to(torch.float32), layout),
                None if counts is None else int(counts[j]),
            )
            for j, reply in enumerate(replies)
        }

    def _replace(self, reply: Message, arrays: ArrayRecord, count: int | None) -> Message:
        """A copy of ``reply`` whose content has ``arrays`` (and ``count`` examples)."""
        weight_key = str(getattr(self.strategy, "weighted_by_key", NUM_EXAMPLES))
        content: dict[str, Any] = dict(reply.content.items())
        content[self._arrays_key] = arrays
        if count is not None:
            for name, record in reply.content.items():
                if isinstance(record, MetricRecord) and weight_key in record:
                    content[name] = MetricRecord({**dict(record.items()), weight_key: count})
        out = copy.copy(reply)  # same metadata (read-only here), new content
        out.__dict__.pop("_object_id", None)  # never inherit a cached Flower object id
        out.content = RecordDict(content)
        return out

    @property
    def _arrays_key(self) -> str:
        """Where replies carry the model: the wrapped strategy's ``arrayrecord_key``."""
        return str(getattr(self.strategy, "arrayrecord_key", "arrays"))


def _build_attack(attack: UpdateAttack | str) -> UpdateAttack:
    if isinstance(attack, str):
        return UPDATE_ATTACKS.build(attack, "attack")
    if not isinstance(attack, UpdateAttack):
        raise TypeError(
            f"attack must be an UpdateAttack or a registered name, got {type(attack).__name__}"
        )
    return attack


__all__ = ["Adversary"]
