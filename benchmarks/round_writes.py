"""Writing a run, per round: the recorder that rewrote everything against the journal.

Workload W1 (ByzFL's end-to-end setting): digits, 20 clients of which 4 run ALIE, trimmed mean,
MLP 64-64-10, one SGD step on a batch of 32 per round, lr 0.1, 200 rounds, ``engine=inline``,
checkpoint every 5 rounds (the default).

1. The run, in this process: its wall time split into start-up (``provenance.startup_s``),
   training, aggregation, evaluation and writing (the rows' ``*_s``), and the recorder's
   ``write_s`` at rounds 10 and 200.
2. Old against new, side by side: the run's own records replayed into fresh directories by
   the old recorder (``results.json`` and ``metrics.csv`` rewritten whole after every round,
   ``checkpoint.pt`` carrying every row so far) and by today's ``RunRecorder`` (one fsynced
   ``rounds.jsonl`` line; ``results.json`` at the first round and the end; checkpoints without
   rows), alternating call by call, ``--repeats`` times. Medians of the round-10 and round-200
   calls and of the whole run's write time.

Usage::

    python benchmarks/round_writes.py [--rounds 200] [--repeats 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord

from fedpoison.checkpoint import CHECKPOINT
from fedpoison.execute import RunRecorder, execute
from fedpoison.files import atomic_path
from fedpoison.outputs import write_outputs
from fedpoison.records import to_record, to_state_dict
from fedpoison.run import Simulation, prepare
from fedpoison.strategies.record import RoundRecord

W1 = [
    "dataset=digits",
    "model=mlp",
    "federation.num_clients=20",
    "attack=alie",
    "defense=trimmed_mean",
    "threat.num_malicious=4",
    "training.local_steps=1",
    "training.batch_size=32",
    "training.lr=0.1",
    "engine=inline",
    "checkpoint_every=5",
    "progress=false",
]
EVERY = 5


def w1(rounds: int, run_dir: Path) -> tuple[Simulation, dict[str, Any], list[RoundRecord]]:
    """Run W1 into ``run_dir``: the simulation, its results and its round records."""
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="fedpoison.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=[*W1, f"num_rounds={rounds}"])
    sim = prepare(cfg)
    records: list[RoundRecord] = []
    results = execute(sim, run_dir, on_round=records.append)
    return sim, results, records


class OldRecorder:
    """The recorder before the journal: every round rewrites ``results.json`` and
    ``metrics.csv`` whole; every 5th round a checkpoint with all the rows so far."""

    def __init__(self, run_dir: Path, results: dict[str, Any], server_state: dict) -> None:
        self.run_dir, self.results, self.server_state = run_dir, results, server_state

    def __call__(self, record: RoundRecord, arrays: ArrayRecord) -> None:
        self.results["rounds"].append(record.to_dict())
        write_outputs(self.run_dir, self.results)
        if record.round % EVERY == 0:
            state = {
                "round": record.round,
                "config": self.results["config"],
                "wall_s": 0.0,
                "arrays": to_state_dict(arrays),
                **self.server_state,
                "rounds": self.results["rounds"],
            }
            buffer = io.BytesIO()
            torch.save(state, buffer)
            with atomic_path(self.run_dir / CHECKPOINT) as tmp:
                tmp.write_bytes(buffer.getbuffer())


def _fresh(results: dict[str, Any]) -> dict[str, Any]:
    return {**results, "status": "running", "rounds": [], "final": None}


def replay(
    sim: Simulation, results: dict[str, Any], records: list[RoundRecord], root: Path
) -> dict[str, list[float]]:
    """Seconds of each recorder call, ``old`` and ``new`` alternating call by call."""
    arrays = to_record(sim.federation.new_model().state_dict())
    state = sim.robust.server.state_dict()
    state = {"defense": state["defense"], "privacy": state.get("privacy", {})}
    old_dir, new_dir = Path(tempfile.mkdtemp(dir=root)), Path(tempfile.mkdtemp(dir=root))
    recorders: dict[str, Callable[[RoundRecord, ArrayRecord], None]] = {
        "old": OldRecorder(old_dir, _fresh(results), state),
        "new": RunRecorder(
            new_dir, _fresh(results), sim.robust.server, len(records), EVERY, lambda: 0.0
        ),
    }
    seconds: dict[str, list[float]] = {"old": [], "new": []}
    for i, record in enumerate(records):
        order = ["old", "new"] if i % 2 == 0 else ["new", "old"]
        for name in order:
            timing = None if record.timing is None else replace(record.timing, write_s=None)
            again = replace(record, timing=timing)
            t0 = time.perf_counter()
            recorders[name](again, arrays)
            seconds[name].append(time.perf_counter() - t0)
    return seconds


def _ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):>9.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: $TMPDIR)")
    args = parser.parse_args()
    if args.rounds < 12:
        parser.error("--rounds must be ≥ 12 (rounds 10, 11 and the last two are compared)")
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(dir=args.dir))
    print(
        f"# writing a run — {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, W1 × {args.rounds} rounds, files under {root}"
    )
    sim, results, records = w1(args.rounds, root / "w1")
    rows, prov = results["rounds"], results["provenance"]
    phases = {k: sum(r[k] for r in rows) for k in ("train_s", "aggregate_s", "eval_s", "write_s")}
    split = {"start-up": prov["startup_s"], **phases}
    split["rest (engine, strategy, loggers)"] = prov["wall_s"] - sum(split.values())
    print(
        f"\n## the run: {prov['wall_s']:.2f} s wall, "
        f"final accuracy {results['final']['accuracy']:.4f}\n"
    )
    print(f"| {'part':<34} | {'seconds':>8} | {'share':>6} |")
    print(f"|{'-' * 36}|{'-' * 10}|{'-' * 8}|")
    for name, value in split.items():
        print(f"| {name:<34} | {value:>8.3f} | {value / prov['wall_s']:>6.1%} |")
    last = len(rows)
    print(
        f"\nwrite_s: round 10 {1000 * rows[9]['write_s']:.3f} ms, round {last} "
        f"{1000 * rows[-1]['write_s']:.3f} ms (checkpoint rounds); round 11 "
        f"{1000 * rows[10]['write_s']:.3f} ms, round {last - 1} {1000 * rows[-2]['write_s']:.3f} ms"
    )

    calls: dict[str, list[list[float]]] = {"old": [], "new": []}
    for _ in range(args.repeats):
        seconds = replay(sim, results, records, root)
        for name, values in seconds.items():
            calls[name].append(values)
    print(
        f"\n## old vs new recorder, {args.repeats} alternating replays of the run's records "
        "(median ms per call; checkpoint every 5 rounds)\n"
    )
    picks = {
        "round 10": 9,
        "round 11": 10,
        f"round {last - 1}": last - 2,
        f"round {last}": last - 1,
    }
    print(
        f"| {'recorder':<8} | " + " | ".join(f"{k:>9}" for k in picks) + f" | {'whole run s':>11} |"
    )
    print(f"|{'-' * 10}|" + "|".join("-" * 11 for _ in picks) + f"|{'-' * 13}|")
    for name, runs in calls.items():
        cells = " | ".join(_ms([run[i] for run in runs]) for i in picks.values())
        total = statistics.median(sum(run) for run in runs)
        print(f"| {name:<8} | {cells} | {total:>11.3f} |")
    old = statistics.median(sum(run) for run in calls["old"])
    new = statistics.median(sum(run) for run in calls["new"])
    print(f"\nwriting the whole run: old {old:.3f} s, new {new:.3f} s ({old / new:.1f}× less)")


if __name__ == "__main__":
    main()
