"""The ``fedpoison`` command (a Hydra app; ``python -m fedpoison`` too).

Config mistakes stop before round 1 with one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fedpoison.logs import quiet_environment

quiet_environment()

import hashlib  # noqa: E402
import re  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

EXIT_CONFIG = 2
EXIT_ROUND = 3
_PATH_SAFE = re.compile(r"[A-Za-z0-9_.,=+-]{1,120}")


def sweep_job_suffix(overrides: str) -> str:
    """The end of a sweep job's directory name (``hydra.sweep.subdir``).

    ``overrides`` is Hydra's ``job.override_dirname``: the job's overrides sorted, without those
    the name already shows (defense, attack, f, seed) or that only change the display. Deriving
    the name from the settings instead of the job number keeps it stable when a sweep is
    re-run in another order or extended, so ``resume=true`` finds every finished run. Returns
    ``""``, ``"-<overrides>"``, or ``"-<10 hex digits of their SHA-1>"`` when they are long or
    not safe in a path.
    """
    if not overrides:
        return ""
    if _PATH_SAFE.fullmatch(overrides):
        return f"-{overrides}"
    return "-" + hashlib.sha1(overrides.encode()).hexdigest()[:10]


OmegaConf.register_new_resolver("fedpoison.sweep_job_suffix", sweep_job_suffix, replace=True)


def fail(message: str, code: int = EXIT_CONFIG) -> None:
    """Print one line and exit with ``code`` (2: bad config, 3: a round could not run)."""
    print(f"fedpoison: error: {message}", file=sys.stderr)
    raise SystemExit(code)


FAILED_JOBS: list[tuple[str, int, str]] = []
"""Jobs of a multirun that failed: (run directory, exit code, message)."""


def _job_failed(message: str, code: int, run_dir: Path, multirun: bool) -> None:
    """A single run exits; a sweep prints the line, records it and goes on to the next job."""
    if not multirun:
        fail(message, code)
    print(f"fedpoison: error in {run_dir}: {message}", file=sys.stderr)
    FAILED_JOBS.append((str(run_dir), code, message))


SHOWN = ("dataset", "model", "partition", "attack", "defense", "engine", "privacy")


def _summary(results: dict[str, Any]) -> str:
    """The closing lines printed after a run."""
    cfg, final, prov, choices = results["config"], results["final"], results["provenance"], results["choices"]
    rows = results["rounds"]
    setting = " ".join(f"{k}={choices[k]}" for k in SHOWN if k in choices)
    setting += f" clients={cfg['federation']['num_clients']} malicious={len(results['malicious_clients'])}"
    line = f"final accuracy {final['accuracy']:.4f}  loss {final['loss']:.4f}"
    if "asr" in final:
        line += f"  backdoor ASR {final['asr']:.4f}"
    if "epsilon" in final:
        line += f"  privacy (ε, δ) = ({final['epsilon']:.3g}, {final['delta']:.0e})"
    train = sum(r["train_s"] for r in rows)
    agg = sum(r["aggregate_s"] for r in rows)
    text = (
        f"fedpoison: {setting}\n  {line}\n"
        f"  {len(rows)} rounds in {prov['wall_s']:.1f} s (training {train:.1f} s, aggregation {agg:.2f} s)"
    )
    if "baseline" in results:
        b = results["baseline"]
        text += (
            f"\n  without attack {b['no_attack_accuracy']:.4f} (attack cost {b['attack_accuracy_loss']:+.4f}); "
            f"fedavg without attack {b['fedavg_no_attack_accuracy']:.4f} (benign cost {b['benign_cost']:+.4f})"
        )
    return text


def _same_run(done: dict[str, Any], cfg: DictConfig) -> bool:
    """Whether a finished ``results.json`` came from this configuration (display flags aside)."""
    from fedpoison.config import config_changes

    now = OmegaConf.to_container(cfg, resolve=True)
    display = frozenset({"resume", "progress", "verbose"})
    return done.get("status") == "complete" and not config_changes(done.get("config", {}), now, display)


def run_job(cfg: DictConfig) -> dict[str, Any]:
    """One Hydra job: prepare (fail fast), run with a progress bar, print the summary."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from hydra.utils import instantiate

    from fedpoison.config import ConfigError
    from fedpoison.logs import configure_loggers
    from fedpoison.outputs import read_results
    from fedpoison.progress import RoundProgress
    from fedpoison.run import execute, prepare, run_baselines
    from fedpoison.strategies.robust import RoundError

    configure_loggers(bool(cfg.verbose))
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    done = read_results(run_dir)
    if cfg.resume and done is not None and _same_run(done, cfg):
        print(f"fedpoison: {run_dir} is already complete; skipped")
        return done
    try:
        sim = prepare(cfg)
    except ConfigError as exc:
        _job_failed(str(exc), EXIT_CONFIG, run_dir, multirun)
        return {}
    choices = {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if v is not None and not k.startswith("hydra")}
    logger = instantiate(cfg.logger) if cfg.get("logger") else None
    try:
        with RoundProgress(int(cfg.num_rounds), enabled=bool(cfg.progress)) as progress:

            def on_round(row: dict[str, Any]) -> None:
                progress.update(row)
                if logger is not None:
                    logger.log_round(row)

            results = execute(sim, run_dir, on_round=on_round, choices=choices)
    except ConfigError as exc:  # a checkpoint this run cannot continue from
        _job_failed(str(exc), EXIT_CONFIG, run_dir, multirun)
        return {}
    except RoundError as exc:
        _job_failed(str(exc), EXIT_ROUND, run_dir, multirun)
        return {}
    finally:
        if logger is not None:
            logger.close()
    if cfg.baseline:
        run_baselines(cfg, run_dir, results)
    print(_summary(results))
    print(f"  outputs: {run_dir}")
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    run_job(cfg)


def main() -> None:
    """Console-script entry point."""
    import warnings

    from fedpoison.precheck import precheck_overrides

    # experiments/ is optional (present in the repository, absent for an installed package)
    warnings.filterwarnings("ignore", message="provider=hydra.searchpath")

    message = precheck_overrides(sys.argv[1:])
    if message is not None:
        fail(message)
    _hydra_main()
    if FAILED_JOBS:  # a sweep went on past failed jobs: say which, exit with the worst code
        print(f"fedpoison: {len(FAILED_JOBS)} job(s) of the sweep failed:", file=sys.stderr)
        for run_dir, _, message in FAILED_JOBS:
            print(f"  {run_dir}: {message}", file=sys.stderr)
        raise SystemExit(max(code for _, code, _ in FAILED_JOBS))
