"""Run outputs: a round costs the same bytes at round 200 as at round 10, and the rounds of a run
killed between checkpoints come back from the journal (for the report and for ``resume``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from flwr.app import ArrayRecord

from fedpoison.checkpoint import CHECKPOINT, checkpoint_rounds, load_checkpoint
from fedpoison.config import ConfigError
from fedpoison.execute import RunRecorder
from fedpoison.outputs import JOURNAL, load_rounds, read_journal, read_results
from fedpoison.strategies.record import ClientIssue, RoundRecord, RoundTiming

IO = Path("/proc/self/io")


class _Server:
    """The part of the server pipeline a checkpoint keeps."""

    def state_dict(self) -> dict:
        return {"defense": {"momentum": torch.zeros(3)}, "privacy": {}}


def _record(server_round: int) -> RoundRecord:
    return RoundRecord(
        round=server_round,
        participants=20,
        malicious_participants=4,
        f=4,
        invalid=[ClientIssue(3, "no reply")],
        missing=[],
        invalid_malicious=0,
        train_loss=0.123456789,
        rejected=list(range(8)),
        evaluation={"accuracy": 0.912345678, "loss": 0.312345678},
        timing=RoundTiming(0.0101234, 0.0031234, 0.0005123),
    )


def _recorder(
    run_dir: Path,
    checkpoint_every: int,
    num_rounds: int = 200,
    rounds: list | None = None,
    fsync_every_round: bool = False,
) -> RunRecorder:
    """The CLI's recorder, continuing from ``rounds`` (as ``execute`` does on resume)."""
    results = {"status": "running", "config": {"num_rounds": num_rounds}, "provenance": {}}
    return RunRecorder(
        run_dir,
        {**results, "rounds": list(rounds or []), "final": None},
        _Server(),  # type: ignore[arg-type]
        num_rounds,
        checkpoint_every,
        lambda: 1.0,
        fsync_every_round=fsync_every_round,
    )


def _written() -> int:
    """Bytes this process has passed to ``write`` so far."""
    fields = dict(line.split(": ") for line in IO.read_text().splitlines())
    return int(fields["wchar"])


@pytest.mark.skipif(not IO.exists(), reason="counts bytes with Linux's /proc/self/io")
def test_bytes_written_per_round_do_not_grow_with_the_run(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, checkpoint_every=10)
    arrays = ArrayRecord({"w": torch.ones(64, 64), "b": torch.ones(64)})
    cost = {}
    for r in range(1, 201):
        before = _written()
        recorder(_record(r), arrays)
        cost[r] = _written() - before
    assert cost[1] > cost[2]  # results.json and metrics.csv, once per session
    assert (tmp_path / CHECKPOINT).stat().st_size > 16_000  # rounds 10, 20, … write the model
    assert cost[10] > 16_000 and abs(cost[200] - cost[10]) < 64  # a checkpoint: same size
    assert cost[11] < 1_000 and abs(cost[199] - cost[11]) < 16  # one journal line
    assert len(read_results(tmp_path)["rounds"]) == 1  # the rest is in the journal
    recorder.complete()
    assert len(read_results(tmp_path)["rounds"]) == 200


def test_rounds_of_a_run_killed_between_checkpoints_come_from_the_journal(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, checkpoint_every=5, num_rounds=20)
    arrays = ArrayRecord({"w": torch.ones(2)})
    for r in range(1, 8):
        recorder(_record(r), arrays)  # killed after round 7: the checkpoint is after round 5
    state = load_checkpoint(tmp_path)
    assert state is not None and state["round"] == 5 and "rounds" not in state
    assert [row["round"] for row in load_rounds(tmp_path)] == list(range(1, 8))
    rows = checkpoint_rounds(state, tmp_path)
    assert [row["round"] for row in rows] == [1, 2, 3, 4, 5]
    assert rows == recorder.results["rounds"][:5]  # exact, write times included

    resumed = _recorder(tmp_path, checkpoint_every=5, num_rounds=20, rounds=rows)
    assert [row["round"] for row in read_journal(tmp_path)] == [1, 2, 3, 4, 5]
    resumed(_record(6), arrays)
    assert [row["round"] for row in load_rounds(tmp_path)] == [1, 2, 3, 4, 5, 6]


def test_a_checkpoint_without_its_rounds_in_the_journal_is_refused(tmp_path: Path) -> None:
    recorder = _recorder(tmp_path, checkpoint_every=2, num_rounds=4)
    for r in (1, 2):
        recorder(_record(r), ArrayRecord({"w": torch.ones(2)}))
    state = load_checkpoint(tmp_path)
    (tmp_path / JOURNAL).write_text("")
    (tmp_path / "results.json").unlink()
    with pytest.raises(ConfigError) as refused:
        checkpoint_rounds(state, tmp_path)
    assert str(refused.value) == (
        f"resume=true: {tmp_path / JOURNAL} holds 0 of the 2 rounds before "
        f"{tmp_path / CHECKPOINT}; restore both from a copy, or run with overwrite=true to "
        "start again"
    )
    old = {**state, "rounds": [{"round": 1}, {"round": 2}]}  # written before they left it
    assert checkpoint_rounds(old, tmp_path) == [{"round": 1}, {"round": 2}]


def test_journal_lines_complete_rows_and_a_torn_line_ends_it(tmp_path: Path) -> None:
    lines = [
        {"round": 1, "accuracy": 0.5, "train_s": 1.0},
        {"round": 1, "write_s": 0.25},
        {"round": 2, "train_loss": float("nan")},
    ]
    text = "".join(json.dumps(line) + "\n" for line in lines) + '{"round": 3, "acc'
    (tmp_path / JOURNAL).write_text(text)
    rows = read_journal(tmp_path)
    assert rows[0] == {"round": 1, "accuracy": 0.5, "train_s": 1.0, "write_s": 0.25}
    assert [row["round"] for row in rows] == [1, 2] and rows[1]["train_loss"] != 0.0
    os.remove(tmp_path / JOURNAL)
    assert read_journal(tmp_path) == []


def _journal_fsyncs(monkeypatch: pytest.MonkeyPatch, run_dir: Path) -> list[tuple[int, int]]:
    """Filled with ``(rounds in the journal, round of checkpoint.pt or 0)`` at each fsync of
    ``run_dir``'s journal (other files' fsyncs, the atomic writes', are not counted)."""
    seen: list[tuple[int, int]] = []
    fsync = os.fsync

    def counted(fd: int) -> None:
        journal = run_dir / JOURNAL
        if journal.exists() and os.fstat(fd).st_ino == journal.stat().st_ino:
            state = load_checkpoint(run_dir)
            seen.append((len(read_journal(run_dir)), 0 if state is None else state["round"]))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    return seen


@pytest.mark.parametrize("every_round", [False, True])
def test_the_journal_is_fsynced_before_each_checkpoint_and_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every_round: bool
) -> None:
    fsyncs = _journal_fsyncs(monkeypatch, tmp_path)
    recorder = _recorder(tmp_path, checkpoint_every=5, num_rounds=12, fsync_every_round=every_round)
    arrays = ArrayRecord({"w": torch.ones(2)})
    for r in range(1, 13):
        recorder(_record(r), arrays)
    recorder.complete()
    if every_round:  # each round once (a checkpoint's sync has nothing left to write)
        assert fsyncs == [(r, 5 * ((r - 1) // 5)) for r in range(1, 13)] + [(12, 12)]
    else:  # the checkpoints after rounds 5, 10 and 12 (the last), each before it; the end
        assert fsyncs == [(5, 0), (10, 5), (12, 10), (12, 12)]
    assert [row["round"] for row in read_journal(tmp_path)] == list(range(1, 13))


def test_without_checkpoints_the_journal_is_fsynced_once_at_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs = _journal_fsyncs(monkeypatch, tmp_path)
    recorder = _recorder(tmp_path, checkpoint_every=0, num_rounds=30)
    for r in range(1, 31):
        recorder(_record(r), ArrayRecord())
    assert fsyncs == []  # each line is flushed: a killed process leaves it to the kernel
    assert [row["round"] for row in read_journal(tmp_path)] == list(range(1, 31))
    recorder.fail("stopped")
    assert fsyncs == [(30, 0)]
