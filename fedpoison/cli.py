"""The ``fedpoison`` command (a Hydra app; ``python -m fedpoison`` too).

Config mistakes stop before round 1 with one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fedpoison.logs import quiet_environment

quiet_environment()

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

EXIT_CONFIG = 2


def fail(message: str) -> None:
    """Print one line and exit with code 2."""
    print(f"fedpoison: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def _summary(results: dict[str, Any]) -> str:
    cfg, final, prov = results["config"], results["final"], results["provenance"]
    rows = results["rounds"]
    parts = [
        f"dataset={cfg['dataset']['_target_'].rsplit('.', 1)[-1]}",
        f"clients={cfg['federation']['num_clients']}",
        f"malicious={len(results['malicious_clients'])}",
        f"attack={cfg['attack'].get('name', '?')}",
        f"defense={cfg['defense']['_target_'].rsplit('.', 1)[-1]}",
        f"engine={prov['engine']}",
    ]
    line = f"final accuracy {final['accuracy']:.4f}  loss {final['loss']:.4f}"
    if "asr" in final:
        line += f"  backdoor ASR {final['asr']:.4f}"
    train = sum(r["train_s"] for r in rows)
    agg = sum(r["aggregate_s"] for r in rows)
    return (
        f"fedpoison: {' '.join(parts)}\n  {line}\n"
        f"  {len(rows)} rounds in {prov['wall_s']:.1f} s (training {train:.1f} s, aggregation {agg:.2f} s)"
    )


def run_job(cfg: DictConfig) -> dict[str, Any]:
    """One Hydra job: prepare (fail fast), run with a progress bar, print the summary."""
    from hydra.core.hydra_config import HydraConfig

    from fedpoison.config import ConfigError
    from fedpoison.logs import configure_loggers
    from fedpoison.progress import RoundProgress
    from fedpoison.run import execute, prepare

    configure_loggers(bool(cfg.verbose))
    try:
        sim = prepare(cfg)
    except ConfigError as exc:
        fail(str(exc))
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with RoundProgress(int(cfg.num_rounds), enabled=bool(cfg.progress)) as progress:
        results = execute(sim, run_dir, on_round=progress.update)
    print(_summary(results))
    print(f"  outputs: {run_dir}")
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    run_job(cfg)


def main() -> None:
    """Console-script entry point."""
    from fedpoison.precheck import precheck_overrides

    message = precheck_overrides(sys.argv[1:])
    if message is not None:
        fail(message)
    _hydra_main()
