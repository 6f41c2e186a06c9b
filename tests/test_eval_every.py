"""``eval_every``: the global model is tested every k rounds and after the last one."""

from __future__ import annotations

import csv
from pathlib import Path

from fedpoison_testing import TINY, run_simulation


def test_eval_every_evaluates_multiples_and_last_round_without_changing_training(
    tmp_path: Path,
) -> None:
    every_round = run_simulation([*TINY, "num_rounds=5"], tmp_path / "1")
    sparse = run_simulation([*TINY, "num_rounds=5", "eval_every=2"], tmp_path / "2")
    assert [r["round"] for r in sparse["rounds"] if "accuracy" in r] == [2, 4, 5]
    for dense_row, sparse_row in zip(every_round["rounds"], sparse["rounds"], strict=True):
        assert dense_row["train_loss"] == sparse_row["train_loss"]  # evaluation draws no randomness
        if "accuracy" in sparse_row:
            assert (sparse_row["accuracy"], sparse_row["loss"]) == (
                dense_row["accuracy"],
                dense_row["loss"],
            )
    assert sparse["final"] == every_round["final"]
    with (tmp_path / "2" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [row["accuracy"] != "" for row in rows] == [False, True, False, True, True]
