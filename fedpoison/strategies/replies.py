"""Turn a round's reply messages into validated, client-ordered rows.

Every reply that cannot be used is kept as ``(client id, reason)`` instead of crashing the
round: error replies, replies from nodes that were not sampled, duplicates, missing or
mis-shaped arrays, non-finite weights, and impossible ``num-examples``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from flwr.app import ArrayRecord, Message

from fedpoison.finite import finite_rows
from fedpoison.protocol import NUM_EXAMPLES, TRAIN_LOSS
from fedpoison.training.flat import ModelLayout, flatten


@dataclass
class RoundReplies:
    """Usable replies in ascending client id (``weights``: their flat models stacked
    ``(n, d)``), plus the rejected ones with reasons. ``train_loss``: the losses of the
    usable replies that report one (a non-numeric one as NaN); a reply without
    ``train-loss`` (a malicious client that skipped its training) adds none."""

    client_ids: list[int] = field(default_factory=list)
    weights: torch.Tensor = field(default_factory=lambda: torch.zeros(0, 0))
    num_examples: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    invalid: list[tuple[int, str]] = field(default_factory=list)


def _reason(
    reply: Message, layout: ModelLayout, max_examples: int | None, row: np.ndarray
) -> tuple[str | None, int, float | None]:
    """``(reason or None, num-examples, train-loss or None when it reports none)`` for one
    reply; its flat weights go to ``row``."""
    if reply.has_error():
        reason = reply.error.reason or f"code {reply.error.code}"
        return f"error reply: {reason.splitlines()[0][:200]}", 0, math.nan
    content = reply.content
    if "arrays" not in content or "metrics" not in content:
        return "reply lacks 'arrays' or 'metrics'", 0, math.nan
    metrics = content["metrics"]
    raw = metrics[NUM_EXAMPLES] if NUM_EXAMPLES in metrics else None
    if (
        isinstance(raw, bool)
        or not isinstance(raw, (int, float))
        or raw != raw
        or int(raw) != raw
        or raw <= 0
    ):
        return f"invalid num-examples {raw!r}", 0, math.nan
    if max_examples is not None and raw > max_examples:
        return f"num-examples {int(raw)} exceeds the client's {max_examples} examples", 0, math.nan
    arrays = content["arrays"]
    if not isinstance(arrays, ArrayRecord):
        return f"malformed arrays: a {type(arrays).__name__}, not an ArrayRecord", 0, math.nan
    try:
        flatten(arrays, layout, out=row)
    except (ValueError, TypeError, KeyError) as exc:
        return f"malformed arrays: {exc}", 0, math.nan
    if TRAIN_LOSS not in metrics:
        return None, int(raw), None
    loss = metrics[TRAIN_LOSS]
    return None, int(raw), float(loss) if isinstance(loss, (int, float)) else math.nan


def _one_per_sampled_client(
    replies: Iterable[Message],
    client_of_node: Mapping[int, int],
    sampled: set[int],
    invalid: list[tuple[int, str]],
) -> dict[int, Message]:
    """``{client id: reply}`` for sampled clients' first replies; the rest go to ``invalid``."""
    candidates: dict[int, Message] = {}
    for reply in replies:
        cid = client_of_node.get(reply.metadata.src_node_id, -1)
        if cid not in sampled:
            invalid.append((cid, "reply from a node that was not sampled"))
        elif cid in candidates:
            invalid.append((cid, "duplicate reply"))
        else:
            candidates[cid] = reply
    return candidates


def collect_replies(
    replies: Iterable[Message],
    client_of_node: Mapping[int, int],
    sampled: set[int],
    layout: ModelLayout,
    partition_sizes: Sequence[int] | None = None,
) -> RoundReplies:
    """Validate ``replies`` and order the usable ones by client id.

    Each reply's arrays are decoded straight into its row of one ``(n, d)`` float32 matrix
    (no per-reply vectors to stack). ``partition_sizes[c]`` (when the simulation knows it)
    bounds client ``c``'s ``num-examples``.
    """
    out = RoundReplies()
    candidates = _one_per_sampled_client(replies, client_of_node, sampled, out.invalid)
    matrix = np.empty((len(candidates), layout.dim), dtype=np.float32)
    counts: list[int] = []
    losses: list[float | None] = []
    ids: list[int] = []
    for cid in sorted(candidates):
        bound = partition_sizes[cid] if partition_sizes is not None else None
        reason, count, loss = _reason(candidates[cid], layout, bound, matrix[len(ids)])
        if reason is not None:
            out.invalid.append((cid, reason))
            continue
        ids.append(cid)
        counts.append(count)
        losses.append(loss)
    stacked = torch.from_numpy(matrix[: len(ids)])
    finite = finite_rows(stacked)  # one pass over the whole round
    for cid, count, loss, ok in zip(ids, counts, losses, finite.tolist(), strict=True):
        if not ok:
            out.invalid.append((cid, "non-finite weights"))
            continue
        out.client_ids.append(cid)
        out.num_examples.append(count)
        if loss is not None:
            out.train_loss.append(loss)
    out.weights = stacked if bool(finite.all()) else stacked[finite]
    out.invalid.sort()
    return out
