"""Turn a round's reply messages into validated, client-ordered rows.

Every reply that cannot be used is kept as ``(client id, reason)`` instead of crashing the
round: error replies, replies from nodes that were not sampled, duplicates, missing or
mis-shaped arrays, non-finite weights, and impossible ``num-examples``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from flwr.app import Message

from fedpoison.strategies.updates import ModelLayout, flatten


@dataclass
class RoundReplies:
    """Usable replies in ascending client id (``weights``: their flat models stacked
    ``(n, d)``), plus the rejected ones with reasons."""

    client_ids: list[int] = field(default_factory=list)
    weights: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))
    num_examples: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)


def _reason(
    reply: Message, layout: ModelLayout, max_examples: int | None
) -> tuple[str | None, torch.Tensor | None, int, float]:
    """``(reason or None, flat weights, num-examples, train-loss)`` for one reply."""
    if reply.has_error():
        return f"error reply: {reply.error.reason.splitlines()[0][:200]}", None, 0, math.nan
    content = reply.content
    if "arrays" not in content or "metrics" not in content:
        return "reply lacks 'arrays' or 'metrics'", None, 0, math.nan
    try:
        flat = flatten(content["arrays"], layout)
    except (ValueError, TypeError, KeyError) as exc:
        return f"malformed arrays: {exc}", None, 0, math.nan
    raw = content["metrics"].get("num-examples")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != raw or int(raw) != raw or raw <= 0:
        return f"invalid num-examples {raw!r}", None, 0, math.nan
    if max_examples is not None and raw > max_examples:
        return f"num-examples {int(raw)} exceeds the client's {max_examples} examples", None, 0, math.nan
    loss = content["metrics"].get("train-loss", math.nan)
    return None, flat, int(raw), float(loss) if isinstance(loss, (int, float)) else math.nan


def collect_replies(
    replies: Iterable[Message],
    client_of_node: Mapping[int, int],
    sampled: set[int],
    layout: ModelLayout,
    partition_sizes: Sequence[int] | None = None,
) -> RoundReplies:
    """Validate ``replies`` and order the usable ones by client id.

    ``partition_sizes[c]`` (when the simulation knows it) bounds client ``c``'s ``num-examples``.
    """
    usable: dict[int, tuple[torch.Tensor, int, float]] = {}
    out = RoundReplies()
    for reply in replies:
        cid = client_of_node.get(reply.metadata.src_node_id, -1)
        if cid not in sampled:
            out.invalid.append((cid, "reply from a node that was not sampled"))
            continue
        if cid in usable:
            out.invalid.append((cid, "duplicate reply"))
            continue
        bound = partition_sizes[cid] if partition_sizes is not None else None
        reason, flat, count, loss = _reason(reply, layout, bound)
        if reason is not None or flat is None:
            out.invalid.append((cid, reason or "unusable reply"))
            continue
        usable[cid] = (flat, count, loss)
    ids = sorted(usable)
    stacked = torch.stack([usable[c][0] for c in ids]) if ids else torch.zeros(0, layout.dim)
    finite = torch.isfinite(stacked).all(dim=1)  # one pass over the whole round
    for cid, ok in zip(ids, finite.tolist(), strict=True):
        _, count, loss = usable[cid]
        if not ok:
            out.invalid.append((cid, "non-finite weights"))
            continue
        out.client_ids.append(cid)
        out.num_examples.append(count)
        out.train_loss.append(loss)
    out.weights = stacked[finite]
    out.invalid.sort()
    return out
