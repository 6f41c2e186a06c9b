"""Which partitions are malicious, decided on the client from its own ``partition-id``.

Both client-side entry points (:func:`~fedpoison.clients.mods.poison_mod` and
:func:`~fedpoison.clients.data.poison_data`) take the same three ways of naming the malicious
partitions and resolve them here, with the :class:`~fedpoison.attacks.threat.ThreatModel`
semantics of fedpoison's own ClientApp: ``num_malicious=k`` with ``num_partitions=n`` and
``seed=s`` picks exactly the partitions ``ThreatModel(num_malicious=k).malicious_ids(n, s)``
picks, so a user's app and ``fedpoison federation.num_clients=n threat.num_malicious=k seed=s``
attack with the same clients.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral

from fedpoison.attacks.threat import ThreatModel


@lru_cache(maxsize=64)
def _pool(threat: ThreatModel, num_partitions: int | None, seed: int) -> frozenset[int]:
    """``threat``'s malicious ids (cached: the data wrapper resolves them on every call)."""
    if num_partitions is not None:
        return threat.malicious_ids(num_partitions, seed)
    if threat.selection != "explicit":
        raise ValueError(
            "num_malicious= draws the malicious partitions among num_partitions= partitions; "
            "pass num_partitions (the number of partitions of the federation)"
        )
    if any(i < 0 for i in threat.ids):
        raise ValueError(f"malicious partition ids must be ≥ 0, got {sorted(threat.ids)}")
    return frozenset(int(i) for i in threat.ids)


@dataclass(frozen=True)
class MaliciousPartitions:
    """The malicious partition ids and the threat model whose rounds they attack in.

    Attributes:
        ids: the malicious partition ids (the values of Flower's
            ``context.node_config["partition-id"]``).
        threat: its ``start_round``/``end_round`` decide the rounds the attack is active in.
    """

    ids: frozenset[int]
    threat: ThreatModel

    @classmethod
    def resolve(
        cls,
        who: str,
        *,
        malicious: Iterable[int] | None,
        num_malicious: int | None,
        threat: ThreatModel | None,
        num_partitions: int | None,
        start_round: int,
        end_round: int | None,
        seed: int,
    ) -> MaliciousPartitions:
        """Exactly one of ``malicious`` (ids), ``num_malicious`` (a seeded draw among
        ``num_partitions``) or ``threat``; ``start_round``/``end_round`` go into the threat
        model built from the first two (set them on ``threat`` itself otherwise).
        ``ValueError`` naming ``who`` when the arguments do not fit together."""
        given = [
            name
            for name, value in (
                ("malicious", malicious),
                ("num_malicious", num_malicious),
                ("threat", threat),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise ValueError(
                f"{who} needs exactly one of malicious= (partition ids), num_malicious= (a "
                f"count) or threat= (a ThreatModel); got {', '.join(given) or 'none'}"
            )
        if threat is None:
            threat = _threat(who, malicious, num_malicious, start_round, end_round)
        elif (start_round, end_round) != (1, None):
            raise ValueError(f"{who}: with threat=, set start_round/end_round on the ThreatModel")
        try:
            return cls(_pool(threat, num_partitions, int(seed)), threat)
        except ValueError as exc:
            raise ValueError(f"{who}: {exc}") from None

    def attacking(self, partition_id: int, server_round: int | None) -> bool:
        """Whether ``partition_id`` is malicious and the attack acts in ``server_round``;
        ``None`` = regardless of the round, allowed only when the threat model acts in every
        round (``start_round=1``, ``end_round=None``)."""
        if server_round is None:
            if (self.threat.start_round, self.threat.end_round) != (1, None):
                raise ValueError(
                    "the attack acts only from start_round to end_round: pass server_round="
                )
            return partition_id in self.ids
        return partition_id in self.ids and self.threat.active(server_round)


def _threat(
    who: str,
    malicious: Iterable[int] | None,
    num_malicious: int | None,
    start_round: int,
    end_round: int | None,
) -> ThreatModel:
    if start_round < 1 or (end_round is not None and end_round < start_round):
        raise ValueError(
            f"{who}: need 1 ≤ start_round ≤ end_round, got start_round={start_round}, "
            f"end_round={end_round}"
        )
    if malicious is not None:
        ids = tuple(int(i) for i in malicious)
        return ThreatModel(
            selection="explicit", ids=ids, start_round=start_round, end_round=end_round
        )
    if isinstance(num_malicious, bool) or not isinstance(num_malicious, Integral):
        raise ValueError(f"{who}: num_malicious must be an integer ≥ 0, got {num_malicious!r}")
    count = int(num_malicious)
    return ThreatModel(num_malicious=count, start_round=start_round, end_round=end_round)
