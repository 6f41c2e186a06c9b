"""End to end: fedpoison's CLI (``engine=inline``, or ``--engine vectorized``) against ByzFL's loop.

    python benchmarks/peers_end_to_end.py [--repeats R] [--rounds 200]

Workload W1 is ByzFL's end-to-end setting (the DSGD loop of its ``benchmark/train.py``):
digits (scikit-learn's 8×8 images; fedpoison's stratified split and iid partition), 20 clients
of which 4 are Byzantine and send ALIE (ByzFL's ``ALittleIsEnough``: mean + 1.5·std of the 16
honest gradients, unbiased std), an MLP 64-64-10 (fedpoison's ``mlp``; both sides start from
its seeded initial weights), every honest client one SGD step on a batch of 32 per round,
lr 0.1, no momentum or weight decay, coordinate-wise trimmed mean with f = 4, 200 rounds, one
torch thread, the test accuracy at the end only.

- fedpoison: ``python -m fedpoison`` with :data:`FEDPOISON`'s overrides. ALIE's ``sign=-1``
  is ByzFL's ``+τ·σ`` on gradients written on deltas (docs/conventions.md §C19), and the
  Byzantine clients are 16–19 (ByzFL stacks them after the honest ones). Its time is the
  run's ``wall_s`` (results.json provenance: the rounds and the final evaluation, after
  start-up).
- byzfl: ByzFL's ``Client``, ``ByzantineClient`` and ``Server`` on the 16 honest partitions
  (a shuffled ``DataLoader`` of batch 32 each, as its ``DataDistributor``), driven by the DSGD
  loop of ``train.py``. Its time spans building the clients and the server to the final test
  accuracy. Data loading is outside both times; the process column holds everything.

Runs alternate (fedpoison, byzfl, fedpoison, …), each in a fresh process. The table gives each
pair's seconds, the ratio fedpoison/byzfl and both final accuracies. fedpoison's 4 Byzantine
ClientApps still run but do not train (ALIE with ``stat_source=benign`` never reads their honest
updates: they reply with the received model, which the adversary replaces). What still differs:
the batches are drawn differently (ByzFL cycles through a shuffled loader, so every third batch
of a 71-example partition has 7 examples; fedpoison draws a seeded batch of 32 per round), so
the accuracies agree only statistically.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from aggregators import byzfl_importable

NUM_CLIENTS, NUM_BYZANTINE, BATCH, LR, TAU = 20, 4, 32, 0.1, 1.5


def fedpoison_overrides(rounds: int, engine: str = "inline") -> list[str]:
    """The CLI overrides of W1 (``num_rounds`` = ``rounds``)."""
    byzantine = list(range(NUM_CLIENTS - NUM_BYZANTINE, NUM_CLIENTS))
    return [
        "dataset=digits",
        "partition=iid",
        "model=mlp",
        "model.hidden=64",
        f"federation.num_clients={NUM_CLIENTS}",
        "threat.selection=explicit",
        f"threat.ids=[{','.join(map(str, byzantine))}]",
        f"threat.num_malicious={NUM_BYZANTINE}",
        "threat.knowledge=all",
        "attack=alie",
        f"attack.update.z={TAU}",
        "attack.update.sign=-1",
        "attack.update.unbiased_std=true",
        "attack.update.stat_source=benign",
        "defense=trimmed_mean",
        f"defense.f={NUM_BYZANTINE}",
        "training.local_steps=1",
        f"training.batch_size={BATCH}",
        f"training.lr={LR}",
        "training.momentum=0.0",
        "training.weight_decay=0.0",
        f"num_rounds={rounds}",
        f"eval_every={rounds}",
        "checkpoint_every=0",
        f"engine={engine}",
        "engine.num_threads=1",
        "progress=false",
        "seed=0",
    ]


FEDPOISON = fedpoison_overrides(200)
FEDPOISON_PHASES = ("train", "aggregate", "eval", "write")  # results.json's per-round seconds
BYZFL_PHASES = ("train", "aggregate")  # the clients' steps; the attack, rule and server step


def run_fedpoison(rounds: int, engine: str = "inline") -> dict[str, float]:
    """One CLI run in a fresh process: its ``wall_s``, process seconds and final accuracy."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fedpoison",
                *fedpoison_overrides(rounds, engine),
                f"hydra.run.dir={out}",
            ],
            check=True,
            capture_output=True,
        )
        process = time.perf_counter() - start
        results = json.loads((Path(out) / "results.json").read_text())
    phases = {f"{k}_s": sum(r[f"{k}_s"] for r in results["rounds"]) for k in FEDPOISON_PHASES}
    return {
        "run_s": float(results["provenance"]["wall_s"]),
        "process_s": process,
        "accuracy": float(results["final"]["accuracy"]),
        **phases,
    }


def run_byzfl(rounds: int) -> dict[str, float]:
    """One ByzFL run in a fresh process (this script with ``--byzfl-child``)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--byzfl-child", "--rounds", str(rounds)],
        check=True,
        capture_output=True,
        text=True,
    )
    return {**json.loads(out.stdout.splitlines()[-1]), "process_s": time.perf_counter() - start}


def byzfl_loop(rounds: int) -> dict[str, float]:
    """W1 on ByzFL's classes, in this process: ``{"run_s", "accuracy"}``."""
    from torch.utils.data import DataLoader, Subset, TensorDataset

    from fedpoison.federation import FederationSpec, load_federation

    torch.set_num_threads(1)
    fed = load_federation(
        FederationSpec(
            dataset={"_target_": "fedpoison.data.digits.load_digits"},
            partition={"_target_": "fedpoison.data.partition.iid", "_partial_": True},
            model={"_target_": "fedpoison.models.simple.mlp", "_partial_": True, "hidden": 64},
            num_clients=NUM_CLIENTS,
            seed=0,
        )
    )
    train = TensorDataset(fed.data.x_train, fed.data.y_train)
    loaders = [  # as ByzFL's DataDistributor.idx_to_dataloaders
        DataLoader(Subset(train, fed.partitions[i].tolist()), batch_size=BATCH, shuffle=True)
        for i in range(NUM_CLIENTS - NUM_BYZANTINE)
    ]
    test = DataLoader(TensorDataset(fed.data.x_test, fed.data.y_test), batch_size=256)
    if not byzfl_importable():
        raise SystemExit("byzfl is not importable (PYTHONPATH=/path/to/byzfl)")
    framework = importlib.import_module("byzfl.fed_framework")
    framework.models.fedpoison_mlp = fed.new_model  # ModelBaseInterface builds models by name
    # torch.optim's first optimizer imports torch._dynamo (seconds): an import, left out of
    # the time like fedpoison's imports
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=LR)
    torch.manual_seed(0)
    start = time.perf_counter()
    clients = [framework.Client(client_params(loader)) for loader in loaders]
    server = framework.Server(server_params(test))
    byzantine = framework.ByzantineClient(
        {"name": "ALittleIsEnough", "f": NUM_BYZANTINE, "parameters": {"tau": TAU}}
    )
    state = server.get_dict_parameters()
    phases = dict.fromkeys(BYZFL_PHASES, 0.0)
    for _ in range(rounds):  # train.py's DSGD branch
        tick = time.perf_counter()
        for client in clients:
            client.set_model_state(state)
            client.compute_gradients()
        honest = [client.get_flat_gradients_with_momentum() for client in clients]
        tock = time.perf_counter()
        server.update_model_with_gradients(honest + byzantine.apply_attack(honest))
        state = server.get_dict_parameters()
        phases["train"] += tock - tick
        phases["aggregate"] += time.perf_counter() - tock
    accuracy = server.compute_test_accuracy()
    return {
        "run_s": time.perf_counter() - start,
        "accuracy": float(accuracy),
        **{f"{k}_s": v for k, v in phases.items()},
    }


def client_params(loader: Any) -> dict[str, Any]:
    return {
        "model_name": "fedpoison_mlp",
        "device": "cpu",
        "loss_name": "CrossEntropyLoss",
        "LabelFlipping": False,
        "nb_labels": 10,
        "momentum": 0.0,
        "training_dataloader": loader,
        "store_per_client_metrics": False,
    }


def server_params(test: Any) -> dict[str, Any]:
    return {
        "model_name": "fedpoison_mlp",
        "device": "cpu",
        "test_loader": test,
        "optimizer_name": "SGD",
        "learning_rate": LR,
        "weight_decay": 0.0,
        "milestones": [],
        "learning_rate_decay": 1.0,
        "aggregator_info": {"name": "TrMean", "parameters": {"f": NUM_BYZANTINE}},
        "pre_agg_list": [],
    }


def pair_row(pair: int, ours: dict[str, float], peer: dict[str, float] | None) -> list[str]:
    """One table row: a fedpoison run and the ByzFL run after it (blank without ByzFL)."""
    if peer is None:
        peer = dict.fromkeys(("run_s", "process_s", "accuracy"), math.nan)
    return [
        str(pair),
        f"{ours['run_s']:.2f}",
        f"{peer['run_s']:.2f}",
        f"{ours['run_s'] / peer['run_s']:.2f}",
        f"{ours['process_s']:.2f}",
        f"{peer['process_s']:.2f}",
        f"{ours['accuracy']:.4f}",
        f"{peer['accuracy']:.4f}",
    ]


def print_phases(runs: dict[str, list[dict[str, float]]], rounds: int) -> None:
    """Where each side's time goes: milliseconds per round by phase, medians over the runs
    ("other": the rest of the run's time, set-up and the final evaluation included)."""
    print(f"\nms per round, medians over the runs (of {rounds} rounds):")
    for side, phases in (("fedpoison", FEDPOISON_PHASES), ("byzfl", BYZFL_PHASES)):
        if not runs[side]:
            continue
        parts = [(k, statistics.median(r[f"{k}_s"] for r in runs[side])) for k in phases]
        total = statistics.median(r["run_s"] for r in runs[side])
        parts.append(("other", total - sum(v for _, v in parts)))
        print(f"- {side}: " + ", ".join(f"{k} {1e3 * v / rounds:.2f}" for k, v in parts))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--rounds", type=int, default=200, help="rounds per run (default 200)")
    parser.add_argument(
        "--engine", default="inline", help="fedpoison's engine: inline (default) or vectorized"
    )
    parser.add_argument("--byzfl-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.byzfl_child:
        print(json.dumps(byzfl_loop(args.rounds)))
        return
    have_byzfl = byzfl_importable()
    print(
        f"W1: digits, {NUM_CLIENTS} clients ({NUM_BYZANTINE} ALIE), mlp 64-64-10, 1 step of "
        f"batch {BATCH}, lr {LR}, trimmed mean f={NUM_BYZANTINE}, {args.rounds} rounds, "
        f"1 thread, engine={args.engine}; torch {torch.__version__}; "
        f"byzfl {'yes' if have_byzfl else 'not importable'}"
    )
    print("run s: rounds + final evaluation (data loading excluded); process s: whole process\n")
    header = ["pair", "fedpoison s", "byzfl s", "ratio", "fedpoison process s"]
    header += ["byzfl process s", "fedpoison acc", "byzfl acc"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    ratios: list[float] = []
    runs: dict[str, list[dict[str, float]]] = {"fedpoison": [], "byzfl": []}
    for pair in range(1, args.repeats + 1):
        ours = run_fedpoison(args.rounds, args.engine)
        peer = run_byzfl(args.rounds) if have_byzfl else None
        runs["fedpoison"].append(ours)
        runs["byzfl"] += [peer] if peer is not None else []
        ratios += [ours["run_s"] / peer["run_s"]] if peer is not None else []
        print("| " + " | ".join(pair_row(pair, ours, peer)) + " |", flush=True)
    if ratios:
        print(f"\nmedian ratio fedpoison/byzfl: {statistics.median(ratios):.2f}")
    print_phases(runs, args.rounds)


if __name__ == "__main__":
    main()
