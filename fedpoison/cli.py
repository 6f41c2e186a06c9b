"""The ``fedpoison`` command (a Hydra app; ``python -m fedpoison`` too).

Config mistakes stop before round 1 with one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fedpoison.logs import quiet_environment

quiet_environment()

import errno  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

EXIT_CONFIG = 2
EXIT_ROUND = 3
EXIT_IO = 4
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


def claim_run_dir(path: str) -> str:
    """The ``fedpoison.claim`` resolver of the default ``hydra.run.dir``:
    :func:`fedpoison.rundir.claim`."""
    from fedpoison.rundir import claim

    return claim(path)


OmegaConf.register_new_resolver("fedpoison.sweep_job_suffix", sweep_job_suffix, replace=True)
OmegaConf.register_new_resolver(
    "fedpoison.claim", claim_run_dir, replace=True, use_cache=True
)  # sweep jobs reuse it


def fail(message: str, code: int = EXIT_CONFIG) -> None:
    """Print one line and exit with ``code`` (2: bad config, 3: a round could not run, 4: a file
    could not be read or written)."""
    print(f"fedpoison: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def _job_failed(message: str, code: int, run_dir: Path, multirun: bool) -> None:
    """A single run exits; a sweep job prints the line, records it for the sweep's summary
    (:mod:`fedpoison.sweeps`) and returns, so the sweep goes on."""
    if not multirun:
        fail(message, code)
    from fedpoison.sweeps import record_failure

    print(f"fedpoison: error in {run_dir}: {message}", file=sys.stderr)
    record_failure(run_dir, code, message)


def io_message(exc: OSError) -> str:
    """One line for a file that could not be read or written, with what to do."""
    where = exc.filename or "a file"
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = (
            "free disk space, then resume=true continues from the last checkpoint "
            "(the rounds so far are intact)"
        )
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "choose a writable hydra.run.dir (or fix the permissions)"
    else:
        hint = "check the path and the disk"
    return f"cannot use {where}: {reason}; {hint}"


SHOWN = ("dataset", "model", "partition", "attack", "defense", "engine", "privacy")


def _summary(results: dict[str, Any]) -> str:
    """The closing lines printed after a run."""
    cfg, final, prov, choices = (
        results["config"],
        results["final"],
        results["provenance"],
        results["choices"],
    )
    rows = results["rounds"]
    setting = " ".join(f"{k}={choices[k]}" for k in SHOWN if k in choices)
    setting += (
        f" clients={cfg['federation']['num_clients']} malicious={len(results['malicious_clients'])}"
    )
    line = f"final accuracy {final['accuracy']:.4f}  loss {final['loss']:.4f}"
    if "asr" in final:
        line += f"  backdoor ASR {final['asr']:.4f}"
    if "epsilon" in final:
        line += f"  privacy (ε, δ) = ({final['epsilon']:.3g}, {final['delta']:.0e})"
    train = sum(r["train_s"] for r in rows)
    agg = sum(r["aggregate_s"] for r in rows)
    text = (
        f"fedpoison: {setting}\n  {line}\n"
        f"  {len(rows)} rounds in {prov['wall_s']:.1f} s "
        f"(training {train:.1f} s, aggregation {agg:.2f} s)"
    )
    if "resumed_after_round" in prov:
        text += f", resumed after round {prov['resumed_after_round']}"
    if "baseline" in results:
        b = results["baseline"]
        text += (
            f"\n  without attack {b['no_attack_accuracy']:.4f} "
            f"(attack cost {b['attack_accuracy_loss']:+.4f}); "
            f"fedavg without attack {b['fedavg_no_attack_accuracy']:.4f} "
            f"(benign cost {b['benign_cost']:+.4f})"
        )
    return text


def _same_run(done: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether a finished ``results.json`` came from this configuration (display flags aside)."""
    from fedpoison.config import DISPLAY_KEYS, config_changes

    return done.get("status") == "complete" and not config_changes(
        done.get("config", {}), config, DISPLAY_KEYS
    )


def run_job(cfg: DictConfig) -> dict[str, Any]:
    """One Hydra job: claim the run directory, prepare (fail fast), run, print the summary.

    Every failure a user can cause ends in one line: a bad config or a directory in use (exit
    2), a round that cannot run (3), a file that cannot be read or written (4).
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from fedpoison.config import ConfigError
    from fedpoison.rundir import RunLock
    from fedpoison.strategies.round import RoundError

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        with RunLock(run_dir):
            return _run_in(run_dir, cfg)
    except ConfigError as exc:
        _job_failed(str(exc), EXIT_CONFIG, run_dir, multirun)
    except RoundError as exc:
        _job_failed(str(exc), EXIT_ROUND, run_dir, multirun)
    except OSError as exc:
        _job_failed(io_message(exc), EXIT_IO, run_dir, multirun)
    except Exception as exc:  # a bug: counted in the sweep's summary, then Hydra's traceback
        if multirun:
            from fedpoison.sweeps import record_failure

            record_failure(run_dir, 1, f"{type(exc).__name__}: {exc}")
        raise
    return {}


def _run_in(run_dir: Path, cfg: DictConfig) -> dict[str, Any]:
    """The job, with ``run_dir`` held by this process."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from fedpoison.baselines import run_baselines
    from fedpoison.execute import execute
    from fedpoison.loggers import RunInfo, build_loggers
    from fedpoison.logs import configure_loggers, run_log
    from fedpoison.outputs import load_results
    from fedpoison.progress import RoundProgress
    from fedpoison.run import prepare
    from fedpoison.rundir import check_reuse, save_hydra_files
    from fedpoison.strategies.record import RoundRecord

    configure_loggers(bool(cfg.verbose))
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    config: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    done = load_results(run_dir)
    if cfg.resume and done is not None and _same_run(done, config):
        print(f"fedpoison: {run_dir} is already complete; skipped")
        return done
    check_reuse(run_dir, done, config, resume=bool(cfg.resume), overwrite=bool(cfg.overwrite))
    save_hydra_files(run_dir, cfg)
    with run_log(run_dir) as log:
        sim = prepare(cfg)
        choices = {
            k: str(v)
            for k, v in HydraConfig.get().runtime.choices.items()
            if v is not None and not k.startswith("hydra")
        }
        if cfg.partition.get("name"):  # partition=flwr: the partitioner it runs, not "flwr"
            choices["partition"] = str(cfg.partition.name)
        log.info("start: %s", " ".join(f"{k}={v}" for k, v in choices.items()))
        loggers = build_loggers(cfg.get("logger"))
        try:
            sweep_dir = run_dir.parent if multirun else None
            for logger in loggers:
                logger.start(RunInfo(run_dir, config, choices, sweep_dir))
            with RoundProgress(int(cfg.num_rounds), enabled=bool(cfg.progress)) as progress:

                def on_start(first_round: int) -> None:
                    progress.begin(first_round)
                    if first_round > 1:
                        log.info("resumed from round %d", first_round - 1)

                def on_round(record: RoundRecord) -> None:
                    progress.update(record.evaluation)
                    for logger in loggers:
                        logger.log_round(record.to_dict())

                results = execute(
                    sim, run_dir, on_round=on_round, choices=choices, on_start=on_start
                )
            for logger in loggers:
                logger.finish(results)
        finally:
            for logger in loggers:
                logger.close()
        if cfg.baseline:
            run_baselines(cfg, run_dir, results)
        summary = _summary(results)
        log.info("%s", summary)
    print(summary)
    print(f"  outputs: {run_dir}")
    return results


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    run_job(cfg)


def main() -> None:
    """Console-script entry point."""
    import warnings

    from fedpoison.precheck import precheck_overrides, unwritable_output
    from fedpoison.sweeps import report_failures

    if "--version" in sys.argv[1:]:
        print(_version())
        return
    warnings.formatwarning = _one_line_warning
    message = precheck_overrides(sys.argv[1:])
    if message is not None:
        fail(message)
    message = unwritable_output(sys.argv[1:])
    if message is not None:
        fail(message, EXIT_IO)
    try:
        _hydra_main()
    except BrokenPipeError:  # `fedpoison --help | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None
    except OSError as exc:  # Hydra could not create or write the run directory
        fail(io_message(exc), EXIT_IO)
    # a sweep went on past failed jobs: say which, exit with the worst code
    code = report_failures()
    if code:
        raise SystemExit(code)


def _one_line_warning(
    message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any
) -> str:
    """Warnings as one line, without the library's source location."""
    return f"fedpoison: warning: {message}\n"


def _version() -> str:
    """``fedpoison X (flwr …, torch …, hydra-core …, python …)``."""
    import platform
    from importlib.metadata import version

    parts = ", ".join(f"{name} {version(name)}" for name in ("flwr", "torch", "hydra-core"))
    return f"fedpoison {version('fedpoison')} ({parts}, python {platform.python_version()})"
