"""``RoundRecorder``: a user's app writes a run directory that ``fedpoison-report`` reads.

Three sources of rounds: fedpoison's ``RoundRecord`` (what ``RobustStrategy`` passes), a stock
Flower ``FedAvg`` through the ``evaluate_fn`` wrapper (in-process grid; once more on Flower's
``run_simulation``, marked ``ray`` and ``slow``), and :meth:`RoundRecorder.add_round`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from stock_app import NUM_NODES, client_app
from stock_app import digits as _digits
from stock_app import model as _model

from fedpoison.engines.grid import InlineGrid
from fedpoison.engines.inline import server_context
from fedpoison.outputs import JOURNAL, load_results, read_journal, read_results
from fedpoison.recorder import RoundRecorder
from fedpoison.report import main as report
from fedpoison.strategies.record import ClientIssue, RoundRecord, RoundTiming

CONFIG = {
    "dataset": {"name": "digits"},
    "defense": {"name": "krum"},
    "attack": {"name": "alie"},
    "seed": 0,
    "num_rounds": 3,
}


def _record(server_round: int) -> RoundRecord:
    return RoundRecord(
        round=server_round,
        participants=10,
        malicious_participants=2,
        f=2,
        invalid=[ClientIssue(7, "non-finite weights")] if server_round == 2 else [],
        missing=[],
        invalid_malicious=0,
        train_loss=math.nan if server_round == 3 else 1.0 / server_round,
        rejected=[0, 1],
        detection={"tp": 2.0, "fp": 0.0},
        evaluation={"accuracy": 0.5 + server_round / 10, "loss": 2.0 / server_round},
        timing=RoundTiming(0.01, 0.002, 0.001),
    )


def _report_row(study: Path) -> dict[str, str]:
    assert report([str(study)]) == 0
    with (study / "report.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    return row


def test_round_records_make_a_run_the_report_reads(tmp_path: Path) -> None:
    run_dir = tmp_path / "study" / "run"
    records = [_record(r) for r in (1, 2, 3)]
    with RoundRecorder(run_dir, config=CONFIG, malicious=[1, 0]) as recorder:
        for record in records:
            recorder(record, ArrayRecord())
    done = read_results(run_dir)
    assert done is not None and done["status"] == "complete"
    expected = [r.to_dict() for r in records]  # the CLI's rows, with the recorder's write time
    expected[2]["train_loss"] = None  # NaN is null in results.json
    assert done["rounds"] == expected
    assert all(r.timing is not None and r.timing.write_s is not None for r in records)
    assert list(done["rounds"][0])[-4:] == ["train_s", "aggregate_s", "eval_s", "write_s"]
    assert done["final"] == {"accuracy": 0.8, "loss": 2.0 / 3}
    assert done["malicious_clients"] == [0, 1] and done["config"] == CONFIG
    assert {"flwr", "torch", "startup_s", "wall_s", "peak_rss_mib"} <= set(done["provenance"])
    with (run_dir / "metrics.csv").open() as fh:
        assert [row["round"] for row in csv.DictReader(fh)] == ["1", "2", "3"]
    row = _report_row(tmp_path / "study")
    assert (row["dataset"], row["defense"], row["attack"], row["num_malicious"]) == (
        "digits",
        "krum",
        "alie",
        "2",
    )
    assert float(row["mean"]) == pytest.approx(0.8)


def test_a_killed_app_leaves_every_round_for_the_report(tmp_path: Path) -> None:
    run_dir = tmp_path / "study" / "run"
    recorder = RoundRecorder(run_dir, config=CONFIG)
    for r in (1, 2, 3):
        recorder(_record(r), ArrayRecord())
    # never completed: as if the process had been killed after round 3
    assert len(read_results(run_dir)["rounds"]) == 1  # written whole at the first round only
    rows = read_journal(run_dir)
    assert [row["round"] for row in rows] == [1, 2, 3] and math.isnan(rows[2]["train_loss"])
    assert "write_s" in rows[1] and "write_s" not in rows[2]  # known once the next line lands
    loaded = load_results(run_dir)
    assert loaded["status"] == "running" and loaded["rounds"][2]["train_loss"] is None
    assert [row["accuracy"] for row in loaded["rounds"]] == pytest.approx([0.6, 0.7, 0.8])
    with (run_dir / JOURNAL).open("a") as fh:
        fh.write('{"round":4,"accur')  # a torn last line
    assert len(load_results(run_dir)["rounds"]) == 3
    assert report([str(tmp_path / "study")]) == 0
    assert "`run`: running, 3 of 3 rounds" in (tmp_path / "study" / "report.md").read_text()


def test_a_failing_block_marks_the_run_failed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), RoundRecorder(tmp_path / "run") as recorder:
        recorder.add_round(1, {"accuracy": 0.5})
        raise RuntimeError("round 2: the grid went away\ndetails")
    done = read_results(tmp_path / "run")
    assert done["status"] == "failed" and done["error"] == "round 2: the grid went away"
    assert [row["round"] for row in done["rounds"]] == [1]


def test_rounds_must_increase_and_a_finished_run_takes_no_more(tmp_path: Path) -> None:
    recorder = RoundRecorder(tmp_path / "run")
    recorder.add_round(1, {})
    with pytest.raises(ValueError, match="round 1 after round 1: rounds must increase"):
        recorder.add_round(1, {})
    recorder.complete()
    with pytest.raises(ValueError, match="the run is already complete"):
        recorder.add_round(2, {})


def test_another_runs_directory_is_refused_unless_overwrite(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with RoundRecorder(run_dir) as recorder:
        recorder.add_round(1, {"accuracy": 0.25})
    before = (run_dir / "results.json").read_bytes()
    message = (
        f"{run_dir} is not empty (metrics.csv, results.json, rounds.jsonl); choose a new or "
        "empty directory, or pass overwrite=True to replace the run there"
    )
    with pytest.raises(FileExistsError) as refused:
        RoundRecorder(run_dir)
    assert str(refused.value) == message
    assert (run_dir / "results.json").read_bytes() == before
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"not empty \(a\.txt\)"):
        RoundRecorder(tmp_path / "notes")
    with RoundRecorder(run_dir, overwrite=True) as recorder:
        recorder.add_round(1, {"accuracy": 0.75})
    assert read_results(run_dir)["final"] == {"accuracy": 0.75}
    assert len(read_journal(run_dir)) == 1
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        RoundRecorder(tmp_path / "notes" / "a.txt")


# -- a stock Flower strategy ---------------------------------------------------------------


def _central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    model = _model()
    model.load_state_dict(arrays.to_torch_state_dict())
    x, y = _digits(NUM_NODES)  # rows no client trains on
    with torch.no_grad():
        logits = model(x)
    return MetricRecord(
        {
            "accuracy": float((logits.argmax(1) == y).float().mean()),
            "loss": float(torch.nn.functional.cross_entropy(logits, y)),
        }
    )


def _fedavg_app(run_dir: Path, out: dict) -> ServerApp:
    """Flower's quickstart ServerApp, recording its run with :class:`RoundRecorder`."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        config = {**CONFIG, "defense": {"name": "fedavg"}, "attack": {"name": "none"}}
        with RoundRecorder(run_dir, config=config) as recorder:
            result = FedAvg(fraction_evaluate=0.0).start(
                grid=grid,
                initial_arrays=ArrayRecord(_model().state_dict()),
                num_rounds=3,
                evaluate_fn=recorder.evaluate_fn(_central_evaluate),
            )
        out["result"] = result

    return app


def _check_fedavg_run(study: Path, out: dict) -> None:
    done = read_results(study / "run")
    assert done["status"] == "complete" and [r["round"] for r in done["rounds"]] == [1, 2, 3]
    served = out["result"].evaluate_metrics_serverapp
    assert [row["accuracy"] for row in done["rounds"]] == [served[r]["accuracy"] for r in (1, 2, 3)]
    assert done["provenance"]["startup_s"] >= 0.0
    row = _report_row(study)
    assert (row["defense"], row["attack"]) == ("fedavg", "none")
    assert float(row["mean"]) == pytest.approx(served[3]["accuracy"])


def test_flower_fedavg_run_is_recorded_through_evaluate_fn(tmp_path: Path) -> None:
    out: dict = {}
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _fedavg_app(tmp_path / "run", out)(InlineGrid(client_app, NUM_NODES), server_context())
    finally:
        torch.set_num_threads(previous)
    _check_fedavg_run(tmp_path, out)


@pytest.mark.ray
@pytest.mark.slow
def test_flower_fedavg_on_run_simulation_is_recorded(tmp_path: Path) -> None:
    from flwr.simulation import run_simulation

    out: dict = {}
    run_simulation(
        server_app=_fedavg_app(tmp_path / "run", out),
        client_app=client_app,
        num_supernodes=NUM_NODES,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"include_dashboard": False, "log_to_driver": False},
        },
    )
    _check_fedavg_run(tmp_path, out)
