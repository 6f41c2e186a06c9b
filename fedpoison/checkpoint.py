"""Checkpoints for ``resume=true``: global model, rule state and client state after a round.

The clients' state is the ``ArrayRecord``s of their nodes' Flower contexts (worker momentum,
REFERENCES D26), read from the engine's grid (:meth:`~fedpoison.engines.grid.SimulationGrid.
node_states`) and put back into it on resume.

No RNG state needs saving: every random stream is derived from (seed, purpose, round, client
id), so round ``r`` draws the same numbers whether or not the run was interrupted before it.
The rounds recorded before the checkpoint are not in it (its size would grow with the run):
they are in the run's ``rounds.jsonl``, written before it (:func:`checkpoint_rounds`).
Files are written atomically and read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord

from fedpoison.config import DISPLAY_KEYS, ConfigError, config_changes, first_line
from fedpoison.files import atomic_path
from fedpoison.outputs import JOURNAL, load_rounds
from fedpoison.records import to_record, to_state_dict

CHECKPOINT = "checkpoint.pt"
RESUMABLE_CHANGES = DISPLAY_KEYS | {
    "num_rounds",
    "checkpoint_every",
    "eval_every",
    "engine",
    "logger",
    "baseline",
}
"""Top-level settings a resumed run may change: they do not alter the rounds already run."""


def save_checkpoint(
    run_dir: Path,
    server_round: int,
    arrays: ArrayRecord,
    server_state: dict[str, Any],
    config: dict[str, Any],
    wall_s: float = 0.0,
    clients: dict[int, dict[str, dict[str, torch.Tensor]]] | None = None,
) -> None:
    """Write the state after ``server_round`` of the run of ``config`` (resolved), reached after
    ``wall_s`` seconds of running, to ``run_dir/checkpoint.pt`` atomically. ``server_state``
    is the server pipeline's ``{"defense": ..., "privacy": ..., "attack": ...}``; ``clients``
    the nodes' context state by client id (``{}`` when the clients keep none)."""
    state = {
        "round": server_round,
        "config": config,
        "wall_s": wall_s,
        "arrays": to_state_dict(arrays),
        "defense": server_state["defense"],
        "privacy": server_state.get("privacy", {}),
        "attack": server_state.get("attack", {}),
        "clients": clients or {},
    }
    buffer = io.BytesIO()  # serialised in memory first: a full disk then raises OSError(ENOSPC),
    torch.save(state, buffer)  # not torch's opaque "enforce fail" RuntimeError
    with atomic_path(run_dir / CHECKPOINT) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def load_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The checkpoint in ``run_dir`` (arrays as an ``ArrayRecord``), or ``None``; a file that
    cannot be read raises :class:`~fedpoison.config.ConfigError` naming it."""
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=True)
        state["arrays"] = to_record(state["arrays"])
    except (RuntimeError, EOFError, KeyError, TypeError, ValueError, pickle.UnpicklingError) as exc:
        reason = first_line(exc).split(". ")[0]
        raise ConfigError(
            f"resume=true: {path} is unreadable (truncated or corrupt: {reason}); remove it and "
            "run with overwrite=true to start again, or restore it from a copy"
        ) from None
    return state


def checkpoint_rounds(state: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    """The rows of rounds ``1..state["round"]``: from the run's records (:func:`load_rounds`),
    or from the checkpoint itself when it was written before checkpoints left them out.
    :class:`~fedpoison.config.ConfigError` when the records hold fewer."""
    done = int(state["round"])
    if "rounds" in state:
        return list(state["rounds"])
    rows = load_rounds(run_dir)[:done]
    if [row.get("round") for row in rows] != list(range(1, done + 1)):
        raise ConfigError(
            f"resume=true: {run_dir / JOURNAL} holds {len(rows)} of the {done} rounds before "
            f"{run_dir / CHECKPOINT}; restore both from a copy, or run with overwrite=true "
            "to start again"
        )
    return rows


def checkpoint_wall_s(state: dict[str, Any]) -> float:
    """Seconds of running it took to reach ``state``; for a checkpoint written before that was
    stored, the sum of its rounds' own timings (training, aggregation, evaluation)."""
    if "wall_s" in state:
        return float(state["wall_s"])
    keys = ("train_s", "aggregate_s", "eval_s")
    return sum(float(row.get(key) or 0.0) for row in state["rounds"] for key in keys)


def check_resumable(state: dict[str, Any], config: dict[str, Any], run_dir: Path) -> None:
    """``ConfigError`` unless the run of ``config`` can continue from ``state``: same settings
    apart from :data:`RESUMABLE_CHANGES`, and no more rounds done than ``num_rounds``.
    Checkpoints written before they carried their config are not compared."""
    where = run_dir / CHECKPOINT
    saved = state.get("config")
    changed = [] if saved is None else config_changes(saved, config, RESUMABLE_CHANGES)
    if changed:
        shown = ", ".join(changed[:5]) + (
            f" and {len(changed) - 5} more" if len(changed) > 5 else ""
        )
        raise ConfigError(
            f"resume=true: {where} was written by a run with other settings ({shown}); resume with "
            "the same settings, use another run directory, or set resume=false to start over"
        )
    if state["round"] > int(config["num_rounds"]):
        raise ConfigError(
            f"resume=true: {where} is after round {state['round']} "
            f"but num_rounds={config['num_rounds']}; "
            f"set num_rounds ≥ {state['round']}, or resume=false to start over"
        )
