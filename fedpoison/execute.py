"""Run a prepared :class:`~fedpoison.run.Simulation` on its engine and persist every round.

:class:`RunRecorder` is the public :class:`~fedpoison.recorder.RoundRecorder` (results.json,
metrics.csv, the rounds.jsonl journal) plus the CLI's part: a checkpoint every
``checkpoint_every`` rounds and the run's own provenance; :func:`execute` builds the strategy
around it, resumes from a checkpoint when asked, and marks the run complete or failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.serverapp import Grid, ServerApp
from omegaconf import OmegaConf

from fedpoison import provenance
from fedpoison.certify import certify_final
from fedpoison.checkpoint import (
    check_resumable,
    checkpoint_rounds,
    checkpoint_wall_s,
    load_checkpoint,
    save_checkpoint,
)
from fedpoison.engines.grid import NodeStates, SimulationGrid
from fedpoison.recorder import RoundRecorder
from fedpoison.records import to_record
from fedpoison.run import Simulation
from fedpoison.strategies.record import RoundRecord
from fedpoison.strategies.round import RoundError, ServerPipeline


class RunRecorder(RoundRecorder):
    """The CLI's recorder: each round to ``results`` and the run directory, with checkpoints.

    Args:
        run_dir: where ``results.json``, ``metrics.csv``, ``rounds.jsonl`` and
            ``checkpoint.pt`` go (already checked by :func:`fedpoison.rundir.check_reuse`).
        results: the ``results.json`` document (its ``rounds`` may hold resumed rounds).
        server: the pipeline whose state the checkpoint keeps.
        num_rounds, checkpoint_every: the run's length and checkpoint period (0 = none).
        wall_s: seconds the run has taken so far (across resumed sessions).
        on_round: called with each round's record once it is on disk.
        fsync_every_round: ``output.fsync_every_round`` (otherwise the journal is fsynced
            before each checkpoint and at the end: :mod:`fedpoison.outputs`, durability).

    Attributes:
        clients: reads the clients' context state for the checkpoint (set by the ServerApp
            from its grid; ``None`` when the grid keeps contexts out of reach).
    """

    def __init__(
        self,
        run_dir: Path,
        results: dict[str, Any],
        server: ServerPipeline,
        num_rounds: int,
        checkpoint_every: int,
        wall_s: Callable[[], float],
        on_round: Callable[[RoundRecord], None] | None = None,
        fsync_every_round: bool = False,
    ) -> None:
        self._begin(run_dir, results, wall_s, fsync_every_round)
        self.server = server
        self.num_rounds, self.checkpoint_every = num_rounds, checkpoint_every
        self.on_round = on_round
        self.clients: Callable[[], NodeStates] | None = None
        self.arrays: ArrayRecord | None = None  # the global model after the last round

    def __call__(self, record: RoundRecord, arrays: ArrayRecord) -> None:
        super().__call__(record, arrays)
        self.arrays = arrays
        if self.on_round is not None:
            self.on_round(record)

    def _persist(self, server_round: int, arrays: ArrayRecord) -> None:
        """The checkpoint, when one is due after ``server_round``."""
        every = self.checkpoint_every
        if every and (server_round % every == 0 or server_round == self.num_rounds):
            self._sync()  # the checkpoint's rounds, durable before it
            state = self.server.state_dict()
            config = self.results["config"]
            clients = None if self.clients is None else self.clients()
            save_checkpoint(
                self.run_dir, server_round, arrays, state, config, self._wall_s(), clients
            )

    def complete(self) -> None:
        """Mark the run complete with its final metrics and peak memory."""
        rounds = self.results["rounds"]
        if len(rounds) != self.num_rounds:
            raise RuntimeError(
                f"the engine finished after {len(rounds)} of {self.num_rounds} rounds"
            )
        super().complete()


def _results(
    sim: Simulation,
    run_dir: Path,
    config: dict[str, Any],
    choices: dict[str, str] | None,
    checkpoint: dict[str, Any] | None,
) -> dict[str, Any]:
    """The ``results.json`` document at the start of this session."""
    results: dict[str, Any] = {
        "status": "running",
        "config": config,
        "provenance": provenance.collect(int(sim.cfg.seed), sim.engine.describe()),
        "choices": choices or {},
        "malicious_clients": sorted(sim.participation.malicious),
        "rounds": checkpoint_rounds(checkpoint, run_dir) if checkpoint else [],
        "final": None,
    }
    if checkpoint:
        results["provenance"]["resumed_after_round"] = checkpoint["round"]
    return results


def _server_app(
    initial: ArrayRecord, sim: Simulation, recorder: RunRecorder, clients: NodeStates
) -> ServerApp:
    """The ServerApp that runs the simulation's strategy from ``initial``, the clients' context
    state restored from ``clients`` and read by ``recorder``'s checkpoints (fedpoison's grids;
    :meth:`~fedpoison.engines.base.Engine.check` refused client state on any other)."""
    app = ServerApp()
    num_rounds, timeout = int(sim.cfg.num_rounds), float(sim.cfg.federation.timeout)
    train_config = ConfigRecord(sim.procedure.to_config())

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        if isinstance(grid, SimulationGrid):
            grid.load_node_states(clients)
            recorder.clients = grid.node_states
        sim.strategy.start(
            grid,
            initial,
            num_rounds=num_rounds,
            timeout=timeout,
            train_config=train_config,
            evaluate_fn=sim.evaluator,
        )

    return app


def execute(
    sim: Simulation,
    run_dir: Path,
    on_round: Callable[[RoundRecord], None] | None = None,
    choices: dict[str, str] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run ``sim``; every round goes to ``run_dir`` (see :mod:`fedpoison.outputs`).
    ``on_start(first_round)`` is called once before the first round this call runs.

    Every ``checkpoint_every`` rounds the global model and the server's state go to
    ``checkpoint.pt`` (the rounds before it are in ``rounds.jsonl``); with ``resume=true`` a
    run continues from there and ends bit-identical to an uninterrupted one; its ``wall_s``
    then counts the time it took to reach the checkpoint plus this session's.
    """
    started = time.perf_counter()
    config = cast(dict[str, Any], OmegaConf.to_container(sim.cfg, resolve=True))
    checkpoint = load_checkpoint(run_dir) if sim.cfg.resume else None
    if checkpoint:
        check_resumable(checkpoint, config, run_dir)
    before = checkpoint_wall_s(checkpoint) if checkpoint else 0.0
    recorder = RunRecorder(
        run_dir,
        _results(sim, run_dir, config, choices, checkpoint),
        sim.robust.server,
        int(sim.cfg.num_rounds),
        int(sim.cfg.checkpoint_every),
        lambda: before + time.perf_counter() - started,
        on_round,
        bool(sim.cfg.output.fsync_every_round),
    )
    strategy = sim.robust
    strategy.recorder = recorder
    initial = to_record(sim.federation.new_model().state_dict())
    if checkpoint:
        strategy.load_state_dict(checkpoint)
        initial, strategy.first_round = checkpoint["arrays"], checkpoint["round"] + 1
        sim.evaluator.previous = initial  # the model the next round's attackers receive
    if on_start is not None:
        on_start(strategy.first_round)
    if strategy.first_round <= recorder.num_rounds:
        clients = checkpoint.get("clients", {}) if checkpoint else {}
        _run_engine(sim, _server_app(initial, sim, recorder, clients), recorder)
    final = recorder.arrays if recorder.arrays is not None else initial
    certificate = certify_final(sim, final)
    if certificate is not None:
        recorder.results["certify"] = certificate
    recorder.complete()
    return recorder.results


def _run_engine(sim: Simulation, app: ServerApp, recorder: RunRecorder) -> None:
    """Run ``app`` on the engine; a failed round marks the run failed before it propagates."""
    try:
        sim.engine.execute(
            app, sim.client_spec, sim.participation.num_clients, bool(sim.cfg.verbose)
        )
    except RoundError as exc:
        recorder.fail(str(exc))
        raise
    if recorder.write_errors:
        raise recorder.write_errors[0]
