"""``baseline=true``: the same run without its attacker, and FedAvg without attacker, beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from fedpoison.conf import CONF_DIR
from fedpoison.execute import execute
from fedpoison.outputs import write_outputs
from fedpoison.run import prepare


def baseline_config(cfg: DictConfig, *, defense: str | None = None) -> DictConfig:
    """``cfg`` without the attack (and, if given, with ``defense`` from the shipped configs)."""
    variant = OmegaConf.merge(cfg, {"baseline": False, "resume": False, "progress": False})
    assert isinstance(variant, DictConfig)
    variant.attack = OmegaConf.load(CONF_DIR / "attack" / "none.yaml")
    if defense is not None:
        variant.defense = OmegaConf.load(CONF_DIR / "defense" / f"{defense}.yaml")
    return variant


def run_baselines(cfg: DictConfig, run_dir: Path, results: dict[str, Any]) -> dict[str, float]:
    """Run both baselines into ``run_dir``'s ``baseline-*`` folders and add them to ``results``.

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
