"""Loggers: each writes its files (TensorBoard scalars + HParams, W&B offline, an MLflow file
store), several run at once, a sweep's W&B jobs share a group, and a missing extra fails
before round 1 with its install line (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fedpoison_testing import compose_config, fedpoison

from fedpoison.config import ConfigError
from fedpoison.loggers import RunInfo, build_loggers, hyperparameters, numeric

ROWS = [{"round": 1, "accuracy": 0.5, "loss": 1.5, "rejected": [3]}, {"round": 2, "accuracy": 0.7}]
RUN = ["num_rounds=2", "progress=false", "checkpoint_every=0", "federation.num_clients=6"]
RUN += ["threat.num_malicious=1", "defense=median"]


def _run_info(tmp_path: Path, sweep_dir: Path | None = None) -> RunInfo:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.json").write_text("{}", encoding="utf-8")
    (run_dir / "metrics.csv").write_text("round,accuracy\n1,0.5\n", encoding="utf-8")
    config = {"seed": 0, "progress": False, "defense": {"f": None, "name": "median"}}
    return RunInfo(run_dir, config, {"defense": "median", "partition": "iid"}, sweep_dir)


RESULTS: dict[str, Any] = {
    "final": {"accuracy": 0.7, "loss": 1.1},
    "provenance": {"seed": 0, "fedpoison": "0.1.0"},
    "rounds": ROWS,
}


def test_numeric_and_hyperparameters(tmp_path: Path) -> None:
    assert numeric(ROWS[0]) == {"accuracy": 0.5, "loss": 1.5}
    assert numeric({"round": 1, "x": float("nan"), "ok": True, "y": 2}, "final/") == {
        "final/y": 2.0
    }
    run = _run_info(tmp_path)
    assert hyperparameters(run) == {
        "defense": "median",
        "partition": "iid",
        "seed": 0,
        "defense.f": "None",
        "defense.name": "median",
    }  # progress: display only
    assert run.group is None
    assert RunInfo(run.run_dir, {}, {}, Path("/x/multirun/2026-12-01/15-31-00")).group == (
        "2026-12-01/15-31-00"
    )


def test_tensorboard_writes_scalars_and_an_hparams_session(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="logger=tensorboard needs tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    from fedpoison.loggers import TensorBoardLogger

    logger = TensorBoardLogger(tmp_path / "tb")
    logger.start(_run_info(tmp_path))
    for row in ROWS:
        logger.log_round(row)
    logger.finish(RESULTS)
    logger.close()
    scalars = EventAccumulator(str(tmp_path / "tb")).Reload()
    accuracy = [(e.step, e.value) for e in scalars.Scalars("accuracy")]
    assert accuracy == [(1, 0.5), (2, pytest.approx(0.7))]
    session = EventAccumulator(str(tmp_path / "tb" / "hparams")).Reload()
    content = session.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["defense"].string_value == "median"
    assert start.hparams["seed"].number_value == 0
    assert session.Scalars("final/accuracy")[0].value == pytest.approx(0.7)


def test_wandb_offline_writes_a_run_with_config_metrics_summary_and_group(
    tmp_path: Path,
) -> None:
    pytest.importorskip(
        "wandb", reason="logger=wandb needs the wandb extra (pip install '.[wandb]')"
    )
    from fedpoison.loggers.wandb import WandbLogger

    logger = WandbLogger(dir=str(tmp_path / "wb"))
    logger.start(_run_info(tmp_path, tmp_path / "multirun" / "2026-12-01" / "15-31-00"))
    for row in ROWS:
        logger.log_round(row)
    logger.finish(RESULTS)
    logger.close()
    import wandb

    wandb.teardown()  # W&B's service may finish writing the file only when it stops (exit)
    (record,) = (tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb")
    data = record.read_bytes()
    for text in (b"accuracy", b"final/accuracy", b"provenance", b"2026-12-01/15-31-00", b"median"):
        assert text in data, text


def test_mlflow_file_store_gets_params_metrics_and_artifacts(tmp_path: Path) -> None:
    pytest.importorskip(
        "mlflow", reason="logger=mlflow needs the mlflow extra (pip install '.[mlflow]')"
    )
    from fedpoison.loggers.mlflow import MLflowLogger

    store = f"file:{tmp_path / 'mlruns'}"
    logger = MLflowLogger(store, experiment="tests")
    run = _run_info(tmp_path)
    logger.start(run)
    run_id = logger.run_id
    for row in ROWS:
        logger.log_round(row)
    logger.finish(RESULTS)
    logger.close()
    got = logger.client.get_run(run_id)
    assert got.info.status == "FINISHED" and got.info.run_name == "run"
    assert got.data.params["defense"] == "median" and got.data.params["seed"] == "0"
    history = logger.client.get_metric_history(run_id, "accuracy")
    assert [(m.step, m.value) for m in history] == [(1, 0.5), (2, 0.7)]
    assert got.data.metrics["final/accuracy"] == 0.7
    assert json.loads(got.data.tags["fedpoison.provenance"])["seed"] == 0
    assert {a.path for a in logger.client.list_artifacts(run_id)} == {"results.json", "metrics.csv"}
    failed = MLflowLogger(store, experiment="tests")
    failed.start(run)
    failed.close()  # no finish: the run failed
    statuses = {r.info.status for r in failed.client.search_runs([got.info.experiment_id])}
    assert statuses == {"FINISHED", "FAILED"}


def test_several_loggers_at_once(tmp_path: Path) -> None:
    pytest.importorskip("mlflow", reason="logger=mlflow needs the mlflow extra")
    pytest.importorskip("tensorboard", reason="logger=tensorboard needs tensorboard")
    cfg = compose_config(["logger=[tensorboard,mlflow]"])
    assert list(cfg.logger) == ["tensorboard", "mlflow"]
    run_dir = tmp_path / "run"
    done = fedpoison(
        *RUN,
        "logger=[tensorboard,mlflow]",
        f"logger.mlflow.tracking_uri=file:{tmp_path / 'mlruns'}",
        f"hydra.run.dir={run_dir}",
    )
    assert done.returncode == 0, done.stderr
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "tensorboard" / "hparams").glob("events.out.tfevents.*"))
    assert list((tmp_path / "mlruns").glob("*/*/artifacts/results.json"))


def test_a_sweeps_wandb_runs_share_a_group(tmp_path: Path) -> None:
    pytest.importorskip("wandb", reason="logger=wandb needs the wandb extra")
    sweep = tmp_path / "multirun" / "day" / "time"
    done = fedpoison("-m", *RUN, "seed=0,1", "logger=wandb", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr
    records = sorted(sweep.glob("*/wandb/offline-run-*/run-*.wandb"))
    assert len(records) == 2 and all(b"day/time" in r.read_bytes() for r in records)


@pytest.mark.parametrize("name, extra", [("wandb", "wandb"), ("mlflow", "mlflow")])
def test_a_missing_extra_fails_before_round_one_with_the_install_line(
    name: str, extra: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, name, None)  # import → ImportError
    with pytest.raises(ConfigError, match=rf"pip install 'fedpoison\[{extra}\]'"):
        uri = [f"logger.mlflow.tracking_uri=file:{tmp_path}"] if name == "mlflow" else []
        build_loggers(compose_config([f"logger={name}", *uri]).logger)
    code = (
        f"import sys; sys.modules[{name!r}] = None; from fedpoison.cli import main; "
        f"sys.argv = ['fedpoison', 'logger={name}', 'num_rounds=1', 'progress=false', "
        f"'hydra.run.dir={tmp_path / 'run'}']; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert f"pip install 'fedpoison[{extra}]'" in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run" / "results.json").exists()
