"""Structured-config schemas and the checks that run before round 1.

Hydra composes the YAML tree in ``fedpoison/conf``; :func:`validate` merges the fixed-schema
groups into these dataclasses (types) and checks ranges and combinations, raising
:class:`ConfigError` whose one-line message names the field and what to change.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from fedpoison.conf import CONF_DIR

if TYPE_CHECKING:
    from fedpoison.training.local import LocalTraining
    from fedpoison.training.momentum import WorkerMomentum


class ConfigError(ValueError):
    """An invalid configuration; the message is one line saying what to change."""


DISPLAY_KEYS = frozenset({"resume", "overwrite", "progress", "verbose", "output"})
"""Top-level settings that change how a run is shown, started or written, never its results."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def did_you_mean(word: str, options: list[str] | frozenset[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``options``, or ``""``."""
    match = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


@cache
def config_groups() -> frozenset[str]:
    """The config groups (``dataset``, ``defense``, …): the directories of ``fedpoison/conf``."""
    return frozenset(
        p.name for p in CONF_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))
    )


@cache
def known_keys() -> frozenset[str]:
    """The top-level keys a config may have: those of ``config.yaml`` and the group names."""
    primary = OmegaConf.load(CONF_DIR / "config.yaml")
    return frozenset(str(k) for k in primary if k not in ("defaults", "hydra")) | config_groups()


def check_keys(cfg: DictConfig) -> None:
    """:class:`ConfigError` for a top-level key fedpoison does not know (a typo, or a stray
    ``+key=value``), which would otherwise be recorded and ignored."""
    for key in cfg:
        if str(key) not in known_keys():
            raise ConfigError(
                f"unknown config key {str(key)!r}{did_you_mean(str(key), known_keys())}; "
                "`fedpoison --help` lists the groups and keys"
            )


def flatten_config(config: Any, prefix: str = "") -> dict[str, str]:
    """A resolved config as ``{dotted key: JSON text of the leaf value}``."""
    if isinstance(config, dict) and config:
        flat: dict[str, str] = {}
        for key, value in config.items():
            flat.update(flatten_config(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: json.dumps(config, sort_keys=True)}


ADDED_DEFAULTS = {
    "training.worker_momentum": "0.0",
    "training.worker_dampening": "null",
}
"""Keys added after runs were recorded, with the value (JSON text) every earlier run had: a
config without one reads as having it, so those runs still resume and are still skipped."""


def config_changes(
    before: dict[str, Any], now: dict[str, Any], allowed: frozenset[str]
) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, except those under the
    top-level keys in ``allowed`` (a key of :data:`ADDED_DEFAULTS` missing on one side has its
    default there)."""
    old = ADDED_DEFAULTS | flatten_config(before)
    new = ADDED_DEFAULTS | flatten_config(now)
    changed = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
    return sorted(k for k in changed if k.split(".", 1)[0] not in allowed)


@dataclass
class TrainingConfig:
    lr: float = (
        0.3  # client SGD learning rate (mean-loss convention: a sum-loss paper's lr × batch)
    )
    momentum: float = 0.0  # client SGD momentum
    weight_decay: float = 0.0  # client SGD weight decay
    batch_size: int = 16  # client minibatch size
    local_epochs: int = 1  # passes over local data per round (when local_steps is null)
    local_steps: int | None = None  # exact SGD steps per round (1 = FedSGD-like); overrides epochs
    server_lr: float = 1.0  # η in w ← w + η·Agg(Δ)
    worker_momentum: float = 0.0  # β: clients send m ← β·m + (1−δ)·Δ across rounds (0 = off)
    worker_dampening: float | None = None  # δ; null = β (EMA, ByzFL); 0 = heavy-ball

    def worker(self) -> WorkerMomentum:
        """The clients' momentum across rounds these settings describe (REFERENCES D26)."""
        from fedpoison.training.momentum import WorkerMomentum

        return WorkerMomentum(self.worker_momentum, self.worker_dampening)

    def procedure(self) -> LocalTraining:
        """The clients' local procedure these settings describe."""
        from fedpoison.training.local import LocalTraining  # here: the report reads config

        return LocalTraining(
            self.lr,
            self.momentum,
            self.weight_decay,
            self.batch_size,
            self.local_epochs,
            self.local_steps,
        )


@dataclass
class FederationConfig:
    num_clients: int = 20  # registered clients (partitions)
    clients_per_round: int | None = None  # sampled per round; null = use fraction
    fraction: float = 1.0  # share of clients sampled per round when clients_per_round is null
    timeout: float = 3600.0  # seconds the server waits for a round's replies
    dropout_rate: float = 0.0  # probability that a sampled client drops out (no reply), seeded
    straggler_fraction: float = 0.0  # probability that a sampled client is a straggler
    straggler_slowdown: float = 1.0  # a straggler's round time, in units of a normal client's
    deadline: float | None = None  # round deadline in those units; slower stragglers miss the round

    def per_round(self) -> int:
        """Clients sampled each round."""
        if self.clients_per_round is not None:
            return self.clients_per_round
        return max(1, int(round(self.fraction * self.num_clients)))


@dataclass
class ThreatConfig:
    num_malicious: int = 0  # size of the malicious pool
    fraction: float | None = None  # pool as a fraction of num_clients (overrides num_malicious)
    selection: str = "fixed"  # fixed = seeded pool drawn once; explicit = ids
    ids: list[int] = field(default_factory=list)  # explicit malicious client ids
    knowledge: str = "all"  # own = attackers' own updates; all = also the benign updates
    knows_defense: bool = False  # defense-aware attacks are told the rule and f
    start_round: int = 1  # first round the adversary acts
    end_round: int | None = None  # last round the adversary acts (null = to the end)


@dataclass
class OutputConfig:
    # true = fsync rounds.jsonl every round (survives an OS crash between checkpoints);
    # false = flush every round, fsync before each checkpoint and at the end
    fsync_every_round: bool = False


@dataclass
class RobustnessConfig:
    on_invalid_reply: str = "reject"  # reject | zero | fail
    skip_invalid_rounds: bool = False  # skip (and record) rounds with too few valid replies


def _structured(schema: type, node: Any, group: str) -> Any:
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or "?"
        raise ConfigError(f"{group}.{key}: {str(exc).splitlines()[0]}") from None
    return OmegaConf.to_object(merged)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _require_int(cfg: DictConfig, key: str, minimum: int, what: str) -> None:
    """``cfg[key]`` is an integer ≥ ``minimum``; else ``key must be <what>, got <value>``."""
    value = cfg.get(key)
    _require(isinstance(value, int) and value >= minimum, f"{key} must be {what}, got {value!r}")


def validate(
    cfg: DictConfig,
) -> tuple[TrainingConfig, FederationConfig, ThreatConfig, RobustnessConfig]:
    """Type- and range-check the fixed-schema groups; returns them as dataclasses."""
    check_keys(cfg)
    _require_int(cfg, "num_rounds", 1, "an integer ≥ 1")
    _require_int(cfg, "seed", 0, "a non-negative integer")
    _require_int(cfg, "checkpoint_every", 0, "an integer ≥ 0 (0 = never)")
    _require_int(cfg, "eval_every", 1, "an integer ≥ 1 (the last round is always evaluated)")
    for flag in ("resume", "overwrite", "baseline", "verbose", "progress"):
        _require(
            isinstance(cfg.get(flag), bool), f"{flag} must be true or false, got {cfg.get(flag)!r}"
        )
    training = _structured(TrainingConfig, cfg.training, "training")
    federation = _structured(FederationConfig, cfg.federation, "federation")
    threat = _structured(ThreatConfig, cfg.threat, "threat")
    robustness = _structured(RobustnessConfig, cfg.robustness, "robustness")
    _structured(OutputConfig, cfg.output, "output")
    _require(
        robustness.on_invalid_reply in ("reject", "zero", "fail"),
        "robustness.on_invalid_reply must be reject, zero or fail, "
        f"got {robustness.on_invalid_reply!r}",
    )
    _require(training.lr > 0, f"training.lr must be > 0, got {training.lr}")
    _require(training.momentum >= 0, f"training.momentum must be ≥ 0, got {training.momentum}")
    _require(
        training.weight_decay >= 0,
        f"training.weight_decay must be ≥ 0, got {training.weight_decay}",
    )
    _require(
        training.batch_size >= 1, f"training.batch_size must be ≥ 1, got {training.batch_size}"
    )
    _require(
        training.local_epochs >= 1,
        f"training.local_epochs must be ≥ 1, got {training.local_epochs}",
    )
    _require(
        training.local_steps is None or training.local_steps >= 1,
        f"training.local_steps must be ≥ 1 or null, got {training.local_steps}",
    )
    _require(training.server_lr > 0, f"training.server_lr must be > 0, got {training.server_lr}")
    _require(
        0.0 <= training.worker_momentum < 1.0,
        f"training.worker_momentum must be in [0, 1), got {training.worker_momentum}",
    )
    _require(
        training.worker_dampening is None or 0.0 <= training.worker_dampening < 1.0,
        f"training.worker_dampening must be in [0, 1) or null, got {training.worker_dampening}",
    )
    n = federation.num_clients
    _require(n >= 1, f"federation.num_clients must be ≥ 1, got {n}")
    _require(
        federation.clients_per_round is None or 1 <= federation.clients_per_round <= n,
        f"federation.clients_per_round must be in [1, federation.num_clients={n}], "
        f"got {federation.clients_per_round}",
    )
    _require(
        0.0 < federation.fraction <= 1.0,
        f"federation.fraction must be in (0, 1], got {federation.fraction}",
    )
    _require(federation.timeout > 0, f"federation.timeout must be > 0, got {federation.timeout}")
    _require(
        0.0 <= federation.dropout_rate < 1.0,
        f"federation.dropout_rate must be in [0, 1), got {federation.dropout_rate}",
    )
    _require(
        0.0 <= federation.straggler_fraction <= 1.0,
        f"federation.straggler_fraction must be in [0, 1], got {federation.straggler_fraction}",
    )
    _require(
        federation.straggler_slowdown >= 1.0,
        f"federation.straggler_slowdown must be ≥ 1, got {federation.straggler_slowdown}",
    )
    _require(
        federation.deadline is None or federation.deadline >= 1.0,
        "federation.deadline must be ≥ 1 (a normal client's round time) or null, "
        f"got {federation.deadline}",
    )
    _require(
        threat.selection in ("fixed", "explicit"),
        f"threat.selection must be fixed or explicit, got {threat.selection!r}",
    )
    _require(
        threat.knowledge in ("own", "all"),
        f"threat.knowledge must be own or all, got {threat.knowledge!r}",
    )
    _require(
        0 <= threat.num_malicious <= n,
        f"threat.num_malicious must be in [0, federation.num_clients={n}], "
        f"got {threat.num_malicious}",
    )
    _require(
        threat.fraction is None or 0.0 <= threat.fraction <= 1.0,
        f"threat.fraction must be in [0, 1], got {threat.fraction}",
    )
    _require(
        all(0 <= i < n for i in threat.ids),
        f"threat.ids must lie in [0, {n - 1}], got {threat.ids}",
    )
    _require(threat.start_round >= 1, f"threat.start_round must be ≥ 1, got {threat.start_round}")
    _require(
        threat.end_round is None or threat.end_round >= threat.start_round,
        f"threat.end_round must be ≥ threat.start_round={threat.start_round}, "
        f"got {threat.end_round}",
    )
    return training, federation, threat, robustness
