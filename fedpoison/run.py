"""Build a simulation from a composed config, check it, run it, write its outputs.

:func:`prepare` turns the config into objects and fails before round 1 with a
:class:`~fedpoison.config.ConfigError` for anything impossible; :func:`execute` runs the
ServerApp on the configured engine, writing ``results.json``/``metrics.csv`` every round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fedpoison import provenance
from fedpoison.aggregators.pipeline import Defense, build_defense
from fedpoison.attacks.spec import AttackSpec, build_attack, check_attack
from fedpoison.attacks.threat import ThreatModel
from fedpoison.checkpoint import (
    check_resumable,
    checkpoint_wall_s,
    load_checkpoint,
    save_checkpoint,
)
from fedpoison.clients.app import ClientSpec, build_privacy
from fedpoison.clients.training import LocalTraining
from fedpoison.conf import CONF_DIR
from fedpoison.config import ConfigError, RobustnessConfig, TrainingConfig, validate
from fedpoison.engines.base import Engine
from fedpoison.federation import Federation, FederationSpec, load_federation
from fedpoison.outputs import write_outputs
from fedpoison.privacy import Privacy, Setting
from fedpoison.records import to_record
from fedpoison.strategies.adversary import AdversaryStage
from fedpoison.strategies.availability import Availability
from fedpoison.strategies.evaluation import ServerEvaluator
from fedpoison.strategies.fltrust_root import RootTrainer, draw_root_set, server_procedure
from fedpoison.strategies.robust import Participation, RobustStrategy, RoundError

ROOT_KEYS = ("root_size", "root_bias", "root_procedure")


@dataclass
class Simulation:
    """Everything one run needs, built and checked before round 1."""

    cfg: DictConfig
    training: TrainingConfig
    federation: Federation
    client_spec: ClientSpec
    participation: Participation
    attack: AttackSpec
    defense: Defense
    engine: Engine
    device: torch.device
    root_cfg: dict[str, Any]
    robustness: RobustnessConfig
    availability: Availability
    privacy: Privacy


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def _root_message(exc: BaseException) -> str:
    """First line of the innermost cause (Hydra wraps the builder's own error)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip().strip("'\"")
    return text.splitlines()[0] if text else type(exc).__name__


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available; an unavailable CUDA request is a config error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device={name} but no CUDA device is available; use device=cpu or device=auto"
        )
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device must be cpu, cuda[:k] or auto, got {name!r}") from None


def prepare(cfg: DictConfig) -> Simulation:
    """Instantiate and cross-check every component; raises :class:`ConfigError`."""
    training, federation_cfg, threat_cfg, robustness = validate(cfg)
    threat = ThreatModel(**{**vars(threat_cfg), "ids": tuple(threat_cfg.ids)})
    device = resolve_device(str(cfg.device))
    spec = FederationSpec(
        dataset=_container(cfg.dataset),
        partition=_container(cfg.partition),
        model=_container(cfg.model),
        num_clients=federation_cfg.num_clients,
        seed=int(cfg.seed),
    )
    try:
        fed = load_federation(spec)
        attack = build_attack(_container(cfg.attack))
        check_attack(attack, threat)
        defense_cfg = _container(cfg.defense)
        root_cfg = {k: defense_cfg.pop(k) for k in ROOT_KEYS if k in defense_cfg}
        procedure = _procedure(training)
        root_cfg["procedure"] = server_procedure(
            procedure,
            int(root_cfg.get("root_size", 100)),
            root_cfg.get("root_procedure", "clients"),
        )
        defense, defense_f = build_defense(defense_cfg)
        if attack.update is not None:
            attack.update.check_defense(defense.rule)
        engine: Engine = instantiate(cfg.engine)
        privacy_cfg = _container(cfg.privacy)
        privacy = build_privacy(privacy_cfg)
        privacy.check(
            Setting(
                num_clients=federation_cfg.num_clients,
                clients_per_round=federation_cfg.per_round(),
                min_partition=min(len(p) for p in fed.partitions),
                model=fed.new_model(),
                procedure=procedure,
            )
        )
    except (ValueError, TypeError, KeyError, FileNotFoundError, InstantiationException) as exc:
        raise ConfigError(_root_message(exc)) from exc
    malicious = threat.malicious_ids(federation_cfg.num_clients, int(cfg.seed))
    participation = Participation(
        federation_cfg.num_clients, federation_cfg.per_round(), malicious, defense_f
    )
    n = participation.clients_per_round
    try:
        defense.check(n, participation.assumed_f(n))
    except ValueError as exc:
        raise ConfigError(
            f"{exc} (with {n} clients per round); sample more clients, lower threat.num_malicious "
            "or set defense.f"
        ) from None
    client_spec = ClientSpec(
        spec,
        threat,
        _container(cfg.attack.get("data")),
        str(device),
        _container(cfg.attack.get("reply")),
        privacy_cfg,
    )
    availability = Availability(
        federation_cfg.dropout_rate,
        federation_cfg.straggler_fraction,
        federation_cfg.straggler_slowdown,
        federation_cfg.deadline,
    )
    return Simulation(
        cfg,
        training,
        fed,
        client_spec,
        participation,
        attack,
        defense,
        engine,
        device,
        root_cfg,
        robustness,
        availability,
        privacy,
    )


def _train_config(t: TrainingConfig) -> dict[str, float | int]:
    """The per-round ConfigRecord sent to clients."""
    return {
        "lr": t.lr,
        "momentum": t.momentum,
        "weight-decay": t.weight_decay,
        "batch-size": t.batch_size,
        "local-epochs": t.local_epochs,
        "local-steps": t.local_steps or 0,
    }


def _procedure(t: TrainingConfig) -> LocalTraining:
    return LocalTraining(
        t.lr, t.momentum, t.weight_decay, t.batch_size, t.local_epochs, t.local_steps
    )


def build_strategy(sim: Simulation, on_round: Callable[[dict[str, Any]], None]) -> RobustStrategy:
    """The RobustStrategy for ``sim`` (adversary stage, FLTrust root set, evaluator)."""
    seed = int(sim.cfg.seed)
    data = sim.federation.data
    success = sim.attack.data.success_set(data.x_test, data.y_test) if sim.attack.data else None
    evaluator = ServerEvaluator(
        sim.federation.new_model().to(sim.device), data.x_test, data.y_test, sim.device, success
    )
    adversary = None
    if sim.attack.update is not None:
        adversary = AdversaryStage(
            sim.attack.update, sim.client_spec.threat, sim.defense, sim.training.server_lr, seed
        )
    root = None
    if sim.defense.rule.needs_server_update:
        idx = draw_root_set(
            data, int(sim.root_cfg.get("root_size", 100)), seed, sim.root_cfg.get("root_bias")
        )
        root = RootTrainer(
            sim.federation.new_model().to(sim.device),
            data,
            idx,
            sim.root_cfg["procedure"],
            seed,
            sim.device,
        )
    return RobustStrategy(
        participation=sim.participation,
        defense=sim.defense,
        adversary=adversary,
        evaluate_fn=evaluator,
        train_config=_train_config(sim.training),
        server_lr=sim.training.server_lr,
        seed=seed,
        root_trainer=root,
        on_round=on_round,
        device=sim.device,
        on_invalid_reply=sim.robustness.on_invalid_reply,
        skip_invalid_rounds=sim.robustness.skip_invalid_rounds,
        partition_sizes=[len(p) for p in sim.federation.partitions],
        availability=sim.availability,
        privacy=sim.privacy,
    )


def execute(
    sim: Simulation,
    run_dir: Path,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    choices: dict[str, str] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run ``sim``; ``results.json``/``metrics.csv`` in ``run_dir`` are updated every round.
    ``on_start(first_round)`` is called once before the first round this call runs.

    Every ``checkpoint_every`` rounds the global model, the rule's state and the rounds so
    far go to ``checkpoint.pt``; with ``resume=true`` a run continues from there and ends
    bit-identical to an uninterrupted one; its ``wall_s`` then counts the time it took to reach
    the checkpoint plus this session's.
    """
    started = time.perf_counter()
    num_rounds = int(sim.cfg.num_rounds)
    every = int(sim.cfg.checkpoint_every)
    config = OmegaConf.to_container(sim.cfg, resolve=True)
    checkpoint = load_checkpoint(run_dir) if sim.cfg.resume else None
    if checkpoint:
        check_resumable(checkpoint, config, run_dir)
    before = checkpoint_wall_s(checkpoint) if checkpoint else 0.0

    def wall_s() -> float:
        return before + time.perf_counter() - started

    results: dict[str, Any] = {
        "status": "running",
        "config": config,
        "provenance": provenance.collect(int(sim.cfg.seed), sim.engine.describe()),
        "choices": choices or {},
        "malicious_clients": sorted(sim.participation.malicious),
        "rounds": list(checkpoint["rounds"]) if checkpoint else [],
        "final": None,
    }
    if checkpoint:
        results["provenance"]["resumed_after_round"] = checkpoint["round"]

    write_errors: list[OSError] = []  # an engine may swallow the ServerApp's exception: keep it

    def record(row: dict[str, Any], arrays: ArrayRecord) -> None:
        results["rounds"].append(row)
        results["provenance"]["wall_s"] = wall_s()
        try:
            write_outputs(run_dir, results)
            if every and (row["round"] % every == 0 or row["round"] == num_rounds):
                save_checkpoint(
                    run_dir,
                    row["round"],
                    arrays,
                    strategy.defense.state_dict(),
                    results["rounds"],
                    config,
                    strategy.privacy.state_dict(),
                    wall_s(),
                )
        except OSError as exc:
            write_errors.append(exc)
            raise
        if on_round is not None:
            on_round(row)

    strategy = build_strategy(sim, record)
    initial = to_record(sim.federation.new_model().state_dict())
    first_round = 1
    if checkpoint:
        strategy.defense.load_state_dict(checkpoint["defense"])
        strategy.privacy.load_state_dict(checkpoint.get("privacy", {}))
        initial, first_round = checkpoint["arrays"], checkpoint["round"] + 1
    timeout = float(sim.cfg.federation.timeout)
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        strategy.start(
            grid,
            initial,
            num_rounds=num_rounds,
            timeout=timeout,
            first_round=first_round,
            eval_every=int(sim.cfg.eval_every),
        )

    if on_start is not None:
        on_start(first_round)
    if first_round <= num_rounds:
        try:
            sim.engine.execute(
                app, sim.client_spec, sim.participation.num_clients, bool(sim.cfg.verbose)
            )
        except RoundError as exc:  # the rounds so far stay on disk, marked failed with the reason
            results.update(status="failed", error=str(exc))
            results["provenance"]["wall_s"] = wall_s()
            write_outputs(run_dir, results)
            raise
        if write_errors:
            raise write_errors[0]
    if len(results["rounds"]) != num_rounds:
        raise RuntimeError(
            f"the engine finished after {len(results['rounds'])} of {num_rounds} rounds"
        )
    last = results["rounds"][-1]
    results["final"] = {
        k: last[k] for k in ("accuracy", "loss", "asr", "epsilon", "delta") if k in last
    }
    results["provenance"]["wall_s"] = wall_s()
    results["provenance"]["peak_rss_mib"] = provenance.peak_rss_mib()
    results["status"] = "complete"
    write_outputs(run_dir, results)
    return results


def baseline_config(cfg: DictConfig, *, defense: str | None = None) -> DictConfig:
    """``cfg`` without the attack (and, if given, with ``defense`` from the shipped configs)."""
    variant = OmegaConf.merge(cfg, {"baseline": False, "resume": False, "progress": False})
    variant.attack = OmegaConf.load(CONF_DIR / "attack" / "none.yaml")
    if defense is not None:
        variant.defense = OmegaConf.load(CONF_DIR / "defense" / f"{defense}.yaml")
    return variant


def run_baselines(cfg: DictConfig, run_dir: Path, results: dict[str, Any]) -> dict[str, float]:
    """``baseline=true``: the same run without attacker, and FedAvg without attacker.

    Records ``attack_accuracy_loss`` (no-attack accuracy − attacked accuracy, same defense)
    and ``benign_cost`` (FedAvg's no-attack accuracy − this defense's no-attack accuracy).
    """
    choices = {**results.get("choices", {}), "attack": "none"}
    clean = execute(prepare(baseline_config(cfg)), run_dir / "baseline-no-attack", choices=choices)
    fedavg = execute(
        prepare(baseline_config(cfg, defense="fedavg")),
        run_dir / "baseline-fedavg",
        choices={**choices, "defense": "fedavg"},
    )
    baseline = {
        "no_attack_accuracy": clean["final"]["accuracy"],
        "fedavg_no_attack_accuracy": fedavg["final"]["accuracy"],
        "attack_accuracy_loss": clean["final"]["accuracy"] - results["final"]["accuracy"],
        "benign_cost": fedavg["final"]["accuracy"] - clean["final"]["accuracy"],
    }
    results["baseline"] = baseline
    write_outputs(run_dir, results)
    return baseline
