"""Compose a simulation from a config: build every part and check it before round 1.

:func:`prepare` turns the composed Hydra config into a :class:`Simulation` and fails with a
:class:`~fedpoison.config.ConfigError` (one line: what to change) for anything impossible.
The server side is built from the public library pieces a Flower user composes: a
:class:`~fedpoison.strategies.robust.RobustStrategy`, wrapped in :class:`fedpoison.Adversary`
when the attack crafts updates. Running it is :func:`fedpoison.execute.execute`; the no-attack
baselines are :mod:`fedpoison.baselines`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from flwr.app import ArrayRecord
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fedpoison.aggregators.flat_model import FlatModel
from fedpoison.aggregators.pipeline import Defense, build_defense
from fedpoison.attacks.base import DataAttack
from fedpoison.attacks.shaping import ClientRound
from fedpoison.attacks.spec import AttackSpec, build_attack, check_attack
from fedpoison.attacks.threat import ThreatModel
from fedpoison.clients.app import ClientSpec, build_privacy
from fedpoison.config import (
    ConfigError,
    FederationConfig,
    RobustnessConfig,
    first_line,
    validate,
)
from fedpoison.engines.base import Engine
from fedpoison.federation import Federation, FederationSpec, load_federation
from fedpoison.privacy import Privacy, Setting
from fedpoison.records import to_state_dict
from fedpoison.seeding import ADVERSARY, torch_generator
from fedpoison.strategies.availability import Availability
from fedpoison.strategies.evaluation import ServerEvaluator
from fedpoison.strategies.fltrust_root import RootTrainer
from fedpoison.strategies.plan import Participation
from fedpoison.strategies.robust import RobustStrategy
from fedpoison.strategies.round import ReplyPolicy
from fedpoison.strategies.wrapper import Adversary
from fedpoison.training.local import LocalTraining
from fedpoison.training.momentum import WorkerMomentum


@dataclass
class Simulation:
    """Everything one run needs, built and checked before round 1.

    Attributes:
        cfg: the composed config.
        federation: data, partitions and the model constructor.
        client_spec: what every ClientApp process builds itself from.
        engine: where the ClientApps run.
        participation: sampling, the malicious pool and ``f``, checked before round 1.
        robust: the strategy (defense, privacy, FLTrust step, reply policy).
        adversary: the colluding adversary around it, when the attack crafts updates.
        procedure: the clients' local training (sent as the train config).
        evaluator: the server-side evaluation of the global model.
    """

    cfg: DictConfig
    federation: Federation
    client_spec: ClientSpec
    engine: Engine
    participation: Participation
    robust: RobustStrategy
    adversary: Adversary | None
    procedure: LocalTraining
    evaluator: ServerEvaluator

    @property
    def strategy(self) -> RobustStrategy | Adversary:
        """What the ServerApp starts."""
        return self.robust if self.adversary is None else self.adversary


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if node is not None else None


def _root_message(exc: BaseException) -> str:
    """:func:`first_line` of the innermost cause (Hydra wraps the builder's own error), without
    the quotes a ``KeyError`` puts around its message."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return first_line(exc).strip("'\"") or type(exc).__name__


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


@dataclass(frozen=True)
class _Parts:
    """The built components, before they are cross-checked and assembled."""

    federation: Federation
    attack: AttackSpec
    defense: Defense
    defense_f: int | None
    engine: Engine
    privacy: Privacy


def _build_parts(
    cfg: DictConfig,
    spec: FederationSpec,
    federation_cfg: FederationConfig,
    procedure: LocalTraining,
    threat: ThreatModel,
    checkpointed_state: bool,
) -> _Parts:
    """Instantiate the federation, attack, defense, engine and privacy mechanism, checking
    each against the others; any builder's error becomes one :class:`ConfigError` line.
    ``checkpointed_state``: the clients keep state that checkpoints must hold."""
    try:
        federation = load_federation(spec)
        attack = build_attack(_container(cfg.attack))
        check_attack(attack, threat)
        defense, defense_f = build_defense(_container(cfg.defense))
        if attack.update is not None:
            attack.update.check_defense(defense)
        engine: Engine = instantiate(cfg.engine)
        privacy = build_privacy(_container(cfg.privacy))
        privacy.check(
            Setting(
                num_clients=federation_cfg.num_clients,
                clients_per_round=federation_cfg.per_round(),
                min_partition=min(len(p) for p in federation.partitions),
                model=federation.new_model(),
                procedure=procedure,
            )
        )
        engine.check(federation.new_model(), privacy, checkpointed_state=checkpointed_state)
    except (ValueError, TypeError, KeyError, FileNotFoundError, InstantiationException) as exc:
        raise ConfigError(_root_message(exc)) from exc
    return _Parts(federation, attack, defense, defense_f, engine, privacy)


def _participation(
    federation_cfg: FederationConfig, threat: ThreatModel, seed: int, parts: _Parts
) -> Participation:
    """Who takes part each round; the defense's bound checked for a full round."""
    participation = Participation(
        federation_cfg.num_clients,
        federation_cfg.per_round(),
        threat.malicious_ids(federation_cfg.num_clients, seed),
        parts.defense_f,
        Availability(
            federation_cfg.dropout_rate,
            federation_cfg.straggler_fraction,
            federation_cfg.straggler_slowdown,
            federation_cfg.deadline,
        ),
    )
    n = participation.clients_per_round
    try:
        parts.defense.check(n, participation.assumed_f(n))
    except ValueError as exc:
        raise ConfigError(
            f"{exc} (with {n} clients per round); sample more clients, lower threat.num_malicious "
            "or set defense.f"
        ) from None
    return participation


def _strategy(
    parts: _Parts,
    participation: Participation,
    procedure: LocalTraining,
    server_lr: float,
    robustness: RobustnessConfig,
    seed: int,
    device: torch.device,
) -> RobustStrategy:
    """The public strategy for this run: the defense, the FLTrust root set, privacy, policy."""
    root = None
    rule = parts.defense.rule
    if rule.needs_server_update and rule.root is not None:
        model = parts.federation.new_model().to(device)
        data = parts.federation.data
        try:
            root = RootTrainer.from_dataset(model, data, rule.root, procedure, seed, device)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    replies = ReplyPolicy(
        robustness.on_invalid_reply,
        robustness.skip_invalid_rounds,
        tuple(len(p) for p in parts.federation.partitions),
    )
    architecture = None
    if rule.needs_model:
        net = parts.federation.new_model().to(device)
        architecture = FlatModel(net, parts.federation.data.input_shape)
    return RobustStrategy(
        rule,
        pre=parts.defense.pre,
        f=parts.defense_f,
        fraction_evaluate=0.0,
        min_available_nodes=participation.num_clients,
        num_train_nodes=participation.clients_per_round,
        server_lr=server_lr,
        root=root,
        privacy=parts.privacy,
        replies=replies,
        availability=participation.availability,
        known_malicious=participation.malicious,
        ask_partition_ids=True,
        seed=seed,
        device=device,
        model=architecture,
    )


def _adversary(
    parts: _Parts, robust: RobustStrategy, participation: Participation, threat: ThreatModel
) -> Adversary | None:
    """The colluding adversary around ``robust`` (its pool: the threat model's), if any."""
    if parts.attack.update is None:
        return None
    return Adversary(
        robust,
        parts.attack.update,
        malicious=participation.malicious,
        knowledge=threat.knowledge,
        knows_defense=threat.knows_defense,
        start_round=threat.start_round,
        end_round=threat.end_round,
        seed=int(robust.server.seed),
    )


@dataclass
class SuccessRefresh:
    """The success sets of an attack whose trigger depends on the received model (A3FL),
    re-derived on the server as the pool's first attacker derives them: ``for_client`` on
    the global model the round's attackers received and that attacker's clean partition.
    ``None`` (keep the last sets) in rounds the adversary does not act in."""

    attack: DataAttack
    federation: Federation
    threat: ThreatModel
    pool: tuple[int, ...]
    model: torch.nn.Module
    seed: int

    def __call__(
        self, server_round: int, received: ArrayRecord
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
        if not self.threat.active(server_round) or not self.pool:
            return None
        self.model.load_state_dict(to_state_dict(received))
        data, leader = self.federation.data, self.federation.client_data(self.pool[0])
        client = ClientRound(
            self.model,
            *leader,
            num_classes=data.num_classes,
            rank=0,
            num_malicious=len(self.pool),
            server_round=server_round,
            generator=torch_generator(self.seed, ADVERSARY, server_round, self.pool[0]),
            dataset=data,
            leader=leader,
        )
        return self.attack.for_client(client).success_sets(data.x_test, data.y_test)


def _evaluator(
    cfg: DictConfig,
    parts: _Parts,
    device: torch.device,
    participation: Participation,
    threat: ThreatModel,
) -> ServerEvaluator:
    data = parts.federation.data
    attack = parts.attack.data
    sets = {} if attack is None else attack.success_sets(data.x_test, data.y_test)
    success = sets.pop("asr", None)
    model = parts.federation.new_model().to(device)
    every, last = int(cfg.eval_every), int(cfg.num_rounds)
    evaluator = ServerEvaluator(model, data.x_test, data.y_test, device, success, every, last, sets)
    if attack is not None and attack.success_depends_on_model():
        pool = tuple(sorted(participation.malicious))
        new = parts.federation.new_model().to(device)
        seed = int(cfg.seed)
        evaluator.refresh = SuccessRefresh(attack, parts.federation, threat, pool, new, seed)
    return evaluator


def _skips_malicious_training(attack: AttackSpec, momentum: WorkerMomentum) -> bool:
    """Whether the malicious clients may skip their honest training in the rounds the
    adversary acts (:class:`~fedpoison.clients.app.ClientSpec`): the update attack replaces
    their rows without reading them, and nothing else uses their training or keeps state
    from it (a data or reply attack, worker momentum)."""
    return (
        attack.update is not None
        and not attack.update.reads_own_updates()
        and attack.data is None
        and attack.reply is None
        and not momentum.active
    )


def prepare(cfg: DictConfig) -> Simulation:
    """Instantiate and cross-check every component; raises :class:`ConfigError`."""
    training, federation_cfg, threat_cfg, robustness = validate(cfg)
    threat = ThreatModel(**{**vars(threat_cfg), "ids": tuple(threat_cfg.ids)})
    device = resolve_device(str(cfg.device))
    seed = int(cfg.seed)
    spec = FederationSpec(
        dataset=_container(cfg.dataset),
        partition=_container(cfg.partition),
        model=_container(cfg.model),
        num_clients=federation_cfg.num_clients,
        seed=seed,
    )
    procedure = training.procedure()
    momentum = training.worker()
    checkpointed = momentum.active and int(cfg.checkpoint_every) > 0
    parts = _build_parts(cfg, spec, federation_cfg, procedure, threat, checkpointed)
    participation = _participation(federation_cfg, threat, seed, parts)
    client_spec = ClientSpec(
        spec,
        threat,
        _container(cfg.attack.get("data")),
        str(device),
        _container(cfg.attack.get("reply")),
        _container(cfg.privacy),
        momentum,
        _skips_malicious_training(parts.attack, momentum),
    )
    robust = _strategy(
        parts, participation, procedure, training.server_lr, robustness, seed, device
    )
    return Simulation(
        cfg,
        parts.federation,
        client_spec,
        parts.engine,
        participation,
        robust,
        _adversary(parts, robust, participation, threat),
        procedure,
        _evaluator(cfg, parts, device, participation, threat),
    )
