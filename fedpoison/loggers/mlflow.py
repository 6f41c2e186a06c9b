"""MLflow tracking (``logger=mlflow``; ``pip install 'fedpoison[mlflow]'``).

One MLflow run per fedpoison run, in experiment ``experiment`` of the store at
``tracking_uri`` (default: a file store ``mlruns/`` where ``fedpoison`` was started, shared by a
sweep's jobs; view with ``mlflow ui --backend-store-uri file:mlruns``). Params: the choices and
every config leaf (:func:`~fedpoison.loggers.base.hyperparameters`); metrics: every round's at
``step=round``, then the final ones (``final/accuracy``, ...); artifacts: ``results.json`` and
``metrics.csv``. A sweep's jobs carry the tag ``fedpoison.sweep``. It uses ``MlflowClient``
(no global active run), so it composes with other loggers and with sweeps in one process.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from fedpoison.extras import require
from fedpoison.loggers.base import RunInfo, hyperparameters, numeric
from fedpoison.outputs import METRICS, RESULTS

BATCH = 100
"""Params per ``log_batch`` call (MLflow's limit)."""
MAX_VALUE = 6000
"""Longest param (and tag) value kept."""


class MLflowLogger:
    """Args:
    tracking_uri: the tracking store (``file:DIR``, ``sqlite:///mlflow.db``, ``http://...``).
    experiment: the experiment's name (created when missing).
    allow_file_store: let MLflow 3 use a ``file:`` store (it otherwise refuses them).
    """

    def __init__(
        self, tracking_uri: str, experiment: str = "fedpoison", allow_file_store: bool = True
    ) -> None:
        self._mlflow = require("mlflow", "mlflow", "logger=mlflow")
        if allow_file_store:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        self.client = self._mlflow.MlflowClient(tracking_uri=tracking_uri)
        self.experiment = experiment
        self.run_id: str | None = None
        self._run: RunInfo | None = None

    def start(self, run: RunInfo) -> None:
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id if found else self.client.create_experiment(self.experiment)
        )
        tags = {"fedpoison.run_dir": str(run.run_dir)}
        if run.group is not None:
            tags["fedpoison.sweep"] = run.group
        created = self.client.create_run(experiment_id, run_name=run.run_dir.name, tags=tags)
        self.run_id, self._run = created.info.run_id, run
        Param = self._mlflow.entities.Param
        params = [Param(k, str(v)[:MAX_VALUE]) for k, v in hyperparameters(run).items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[i : i + BATCH])

    def _metrics(self, values: dict[str, float], step: int) -> None:
        Metric = self._mlflow.entities.Metric
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def log_round(self, row: dict[str, Any]) -> None:
        self._metrics(numeric(row), int(row["round"]))

    def finish(self, results: dict[str, Any]) -> None:
        assert self.run_id is not None and self._run is not None, "start() opens the run"
        rounds = len(results.get("rounds") or [])
        self._metrics(numeric(results.get("final") or {}, prefix="final/"), rounds)
        provenance = json.dumps(results["provenance"], sort_keys=True)[:MAX_VALUE]
        self.client.set_tag(self.run_id, "fedpoison.provenance", provenance)
        for name in (RESULTS, METRICS):
            self.client.log_artifact(self.run_id, str(self._run.run_dir / name))
        self.client.set_terminated(self.run_id, "FINISHED")
        self.run_id = None

    def close(self) -> None:
        if self.run_id is not None:  # the run failed before finish
            self.client.set_terminated(self.run_id, "FAILED")
            self.run_id = None
