"""RoundProgress: the terminal bar, plain lines elsewhere, resumes and the remaining time."""

from __future__ import annotations

import io
import re

from fedpoison.progress import RoundProgress


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(num_rounds: int, seconds_per_round: float, stream: io.StringIO, **kwargs) -> list[str]:
    """Run rounds ``kwargs.get("start_round", 1)..num_rounds``; return the printed lines."""
    clock = FakeClock()
    with RoundProgress(num_rounds, stream=stream, clock=clock, **kwargs) as progress:
        for r in range(kwargs.get("start_round", 1), num_rounds + 1):
            clock.now += seconds_per_round
            progress.update({"round": r, "accuracy": r / num_rounds, "asr": 0.25})
    return stream.getvalue().splitlines()


def test_lines_every_tenth_of_the_rounds_with_metrics_and_eta():
    lines = run(100, 0.25, io.StringIO())
    assert [int(re.match(r"round (\d+)/100 ", line)[1]) for line in lines] == list(
        range(10, 101, 10)
    )
    assert lines[3] == "round 40/100 (40%)  acc 0.400  asr 0.250  elapsed 0:00:10  eta 0:00:15"
    assert lines[-1].endswith("elapsed 0:00:25  eta 0:00:00")


def test_slow_rounds_print_a_line_every_30_seconds_and_always_the_last():
    lines = run(7, 20.0, io.StringIO(), every_rounds=5)  # after 40 s, 40 s, 5 rounds, the last
    assert [line.split()[1] for line in lines] == ["2/7", "4/7", "5/7", "7/7"]
    assert lines[0] == "round 2/7 (28%)  acc 0.286  asr 0.250  elapsed 0:00:40  eta 0:01:40"


def test_rounds_without_evaluation_keep_the_latest_accuracy():
    stream, clock = io.StringIO(), FakeClock()
    with RoundProgress(2, stream=stream, clock=clock) as progress:
        progress.update({"round": 1})
        progress.update({"round": 2, "accuracy": 0.5})
    assert stream.getvalue() == (
        "round 1/2 (50%)  elapsed 0:00:00  eta 0:00:00\n"
        "round 2/2 (100%)  acc 0.500  elapsed 0:00:00  eta 0:00:00\n"
    )


def test_resume_counts_earlier_rounds_done_and_estimates_from_this_run_only():
    lines = run(8, 5.0, io.StringIO(), start_round=4)
    assert lines[0] == "resumed from round 3 of 8"
    assert lines[1] == "round 4/8 (50%)  acc 0.500  asr 0.250  elapsed 0:00:05  eta 0:00:20"
    assert [line.split()[1] for line in lines[1:]] == ["4/8", "5/8", "6/8", "7/8", "8/8"]


def test_terminal_bar_shows_the_remaining_time():
    stream, clock = Terminal(), FakeClock()
    with RoundProgress(8, stream=stream, clock=clock) as progress:
        for r in (1, 2):
            clock.now += 3.0
            progress.update({"round": r, "accuracy": 0.5})
    out = stream.getvalue()
    assert "2/8" in out and "acc 0.500" in out
    assert "eta 0:00:18" in out  # 2 rounds in 6 s, 6 to go
    assert "round 2/8" not in out  # no plain lines on a terminal


def test_terminal_bar_after_a_resume_says_so():
    stream = Terminal()
    with RoundProgress(8, stream=stream, clock=FakeClock(), start_round=4):
        pass
    out = stream.getvalue()
    assert "3/8" in out and "resumed from round 3" in out
    assert "eta -:--:--" in out  # nothing run here yet: no estimate


def test_disabled_prints_nothing_anywhere(capsys):
    for stream in (io.StringIO(), Terminal()):
        assert run(20, 60.0, stream, enabled=False, start_round=2) == []
    with RoundProgress(3, False) as progress:  # the positional form still works
        progress.update({"round": 1, "accuracy": 0.5})
    assert capsys.readouterr() == ("", "")


def test_default_stream_is_stdout(capsys):
    with RoundProgress(1) as progress:
        progress.update({"round": 1, "accuracy": 0.5})
    assert capsys.readouterr().out.startswith("round 1/1 (100%)  acc 0.500  elapsed 0:00:0")
