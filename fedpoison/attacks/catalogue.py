"""The README table of attacks, generated from the shipped ``conf/attack/*.yaml`` configs."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from fedpoison.attacks.spec import AttackSpec, build_attack

ATTACK_CONF_DIR = Path(__file__).resolve().parent.parent / "conf" / "attack"


def attack_specs(conf_dir: Path = ATTACK_CONF_DIR) -> list[AttackSpec]:
    """Every attack config in ``conf_dir``, built with :func:`build_attack`, sorted by file name."""
    specs = []
    for path in sorted(conf_dir.glob("*.yaml")):
        cfg = OmegaConf.load(path)
        if not isinstance(cfg, DictConfig):
            raise ValueError(f"{path}: an attack config must be a mapping")
        specs.append(build_attack(cfg))
    return specs


def _row(spec: AttackSpec) -> str:
    kinds = (("data", spec.data), ("update", spec.update), ("reply", spec.reply))
    parts = [p for _, p in kinds if p is not None]
    kind = " + ".join(k for k, p in kinds if p is not None)
    knowledge = "—"
    if spec.update is not None:
        knowledge = spec.update.required_knowledge()
        if spec.update.knowledge != knowledge:
            knowledge += f" (variant: {spec.update.knowledge})"
        if spec.update.requires_defense():
            knowledge += " + defense"
    papers = "; ".join(p.paper for p in parts) or "—"
    modules = ", ".join(f"`{type(p).__module__}`" for p in parts) or "—"
    return f"| `{spec.name}` | {kind or 'none'} | {knowledge} | {papers} | {modules} |"


def attack_catalogue(conf_dir: Path = ATTACK_CONF_DIR) -> str:
    """A markdown table: config name, kind (data/update/reply), knowledge its default config needs
    (and the least a variant needs), paper, implementing module(s)."""
    header = [
        "| attack | kind | knowledge needed | paper | module |",
        "|---|---|---|---|---|",
    ]
    return "\n".join(header + [_row(spec) for spec in attack_specs(conf_dir)]) + "\n"
