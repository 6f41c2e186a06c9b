"""Attack composition, configuration and the adversary's view.

An attack is an optional data attack (run inside malicious ClientApps) plus an optional update
attack (run by the adversary stage of the strategy). :func:`build_attack` instantiates one
from its Hydra config, :func:`check_attack` rejects it before the first round when the threat
model does not grant what it needs, and :func:`build_view` is the only way the strategy should
hand updates to an update attack: it strips what the threat model does not grant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from fedpoison.aggregators.pipeline import Defense
from fedpoison.attacks.base import (
    DATA_ATTACKS,
    REPLY_ATTACKS,
    UPDATE_ATTACKS,
    AdversaryView,
    DataAttack,
    ReplyAttack,
    UpdateAttack,
)
from fedpoison.attacks.threat import KNOWLEDGE_ORDER, ThreatModel
from fedpoison.registry import ClassRegistry

B = TypeVar("B")


@dataclass(frozen=True)
class AttackSpec:
    """A configured attack: ``name`` (the config's), a data attack, an update attack and/or
    a reply attack (optional ``reply`` key of the config)."""

    name: str
    data: DataAttack | None
    update: UpdateAttack | None
    reply: ReplyAttack | None = None


def build_attack(cfg: Mapping[str, Any]) -> AttackSpec:
    """Instantiate an :class:`AttackSpec` from a config mapping (dict or ``DictConfig``).

    Keys: ``name`` (str), ``data`` (``None`` or a node building a :class:`DataAttack`),
    ``update`` (``None`` or a node building an :class:`UpdateAttack`) and optionally ``reply``
    (a :class:`ReplyAttack`). Each node is built by
    :meth:`~fedpoison.registry.ClassRegistry.build`: a ``_target_`` node (nested ``_target_``
    nodes are instantiated recursively), a registered name or ``{name: ..., **params}``.
    """
    missing = {"name", "data", "update"} - set(cfg.keys())
    if missing:
        raise ValueError(f"attack config lacks key(s) {sorted(missing)}; needs name, data, update")
    return AttackSpec(
        name=str(cfg["name"]),
        data=_node(cfg, "data", DATA_ATTACKS),
        update=_node(cfg, "update", UPDATE_ATTACKS),
        reply=_node(cfg, "reply", REPLY_ATTACKS),
    )


def _node(cfg: Mapping[str, Any], key: str, registry: ClassRegistry[B]) -> B | None:
    node = cfg.get(key)
    if node is None:
        return None
    return registry.build(node, f"attack.{key}")


def check_attack(spec: AttackSpec, threat: ThreatModel) -> None:
    """Raise ``ValueError`` (one line, saying what to set) when ``spec.update`` needs more
    knowledge than ``threat.knowledge`` grants, or the defense while ``threat.knows_defense``
    is false. Data attacks need nothing from the threat model."""
    if spec.update is None:
        return
    need = spec.update.required_knowledge()
    if KNOWLEDGE_ORDER[need] > KNOWLEDGE_ORDER[threat.knowledge]:
        fitting = [
            n
            for n, cls in UPDATE_ATTACKS.items()
            if KNOWLEDGE_ORDER[cls.knowledge] <= KNOWLEDGE_ORDER[threat.knowledge]
            and not cls.needs_defense
        ]
        raise ValueError(
            f"attack {spec.name} needs threat.knowledge={need} (got {threat.knowledge}); "
            f"set threat.knowledge={need} or choose an attack (or variant) that works with "
            f"knowledge={threat.knowledge}: {', '.join(fitting)}"
        )
    if spec.update.requires_defense() and not threat.knows_defense:
        raise ValueError(
            f"attack {spec.name} needs threat.knows_defense=true (got false); "
            "set threat.knows_defense=true or choose an attack that does not need the defense"
        )


def build_view(
    own: torch.Tensor,
    benign: torch.Tensor,
    *,
    threat: ThreatModel,
    global_weights: torch.Tensor,
    server_lr: float,
    generator: torch.Generator,
    defense: Defense | None = None,
    f: int | None = None,
    server_round: int = 1,
    own_ids: tuple[int, ...] | None = None,
    benign_ids: tuple[int, ...] | None = None,
) -> AdversaryView:
    """The :class:`AdversaryView` the threat model grants for one round.

    Args:
        own: the malicious participants' honest updates ``(m, d)``, ascending client id.
        benign: the benign participants' updates ``(n − m, d)``, ascending client id; always
            pass them, the view keeps them only when ``threat.knowledge == "all"``.
        threat: decides what is kept.
        global_weights: flat current global model ``(d,)``.
        server_lr: the server learning rate η.
        generator: the adversary's random stream for this round (``seeding.ADVERSARY``).
        defense, f: the server's deployed defense (pre-aggregators then rule) and its
            assumed Byzantine count; kept only when ``threat.knows_defense``.
        server_round: 1-based round number.
        own_ids, benign_ids: the rows' client ids, if known (``benign_ids`` kept with
            ``benign``).

    ``num_participants`` is ``m + (n − m)``, computed from the two tensors.
    """
    if own.ndim != 2 or own.shape[0] == 0:
        raise ValueError(
            f"build_view: own must be (m, d) with m ≥ 1, got {tuple(own.shape)}; "
            "skip the adversary stage in rounds without malicious participants"
        )
    if benign.ndim != 2 or own.shape[1] != benign.shape[1]:
        raise ValueError(
            f"build_view: own and benign must be (m, d) and (n−m, d), got "
            f"{tuple(own.shape)} and {tuple(benign.shape)}"
        )
    if (own_ids is not None and len(own_ids) != own.shape[0]) or (
        benign_ids is not None and len(benign_ids) != benign.shape[0]
    ):
        raise ValueError("build_view: own_ids and benign_ids must name one client per row")
    knows_defense = threat.knows_defense
    keeps_benign = threat.knowledge == "all"
    return AdversaryView(
        own=own,
        benign=benign if keeps_benign else None,
        num_participants=int(own.shape[0] + benign.shape[0]),
        global_weights=global_weights,
        server_lr=float(server_lr),
        generator=generator,
        defense=defense if knows_defense else None,
        f=f if knows_defense else None,
        server_round=server_round,
        own_ids=own_ids,
        benign_ids=benign_ids if keeps_benign else None,
    )
