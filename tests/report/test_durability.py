"""The backdoor lifespan: ``results.json["final"]`` from the recorder, and the report's
"Backdoor ASR and lifespan" section."""

from __future__ import annotations

import json
from pathlib import Path

from fedpoison.outputs import asr_lifespan, load_results
from fedpoison.recorder import RoundRecorder
from fedpoison.report import main


def test_lifespan_counts_rounds_after_end_round_until_asr_drops() -> None:
    rows = [{"round": r, "asr": a} for r, a in enumerate([0.9, 0.8, 0.6, 0.55, 0.3, 0.9], 1)]
    assert asr_lifespan(rows, 2) == {"asr_lifespan": 3, "asr_lifespan_censored": False}
    assert asr_lifespan(rows, 4) == {"asr_lifespan": 1, "asr_lifespan_censored": False}
    low = [{"round": 1, "asr": 0.2}, {"round": 2, "asr": 0.9}]
    assert asr_lifespan(low, 1) == {"asr_lifespan": 0, "asr_lifespan_censored": False}
    assert asr_lifespan(rows[:4], 2) == {"asr_lifespan": 2, "asr_lifespan_censored": True}
    assert asr_lifespan(rows, None) == {} and asr_lifespan(rows, 6) == {}
    unevaluated = [{"round": 1, "asr": 0.9}, {"round": 2}, {"round": 3, "asr": 0.1}]
    assert asr_lifespan(unevaluated, 1)["asr_lifespan"] == 2


def test_recorder_writes_the_lifespan_into_final(tmp_path: Path) -> None:
    config = {"threat": {"end_round": 1}, "dataset": {"name": "digits"}, "seed": 0}
    with RoundRecorder(tmp_path / "run", config=config) as recorder:
        for r, asr in ((1, 0.9), (2, 0.7), (3, 0.4)):
            recorder.add_round(r, {"accuracy": 0.9, "asr": asr})
    final = load_results(tmp_path / "run")["final"]  # type: ignore[index]
    assert final["asr_lifespan"] == 2 and final["asr_lifespan_censored"] is False


def test_report_section(tmp_path: Path, run_writer) -> None:
    for seed, (life, censored) in enumerate(((4, False), (6, True))):
        run_dir = run_writer(
            tmp_path, defense="fedavg", attack="backdoor", seed=seed, accuracy=0.9, asr=0.8
        )
        path = run_dir / "results.json"
        results = json.loads(path.read_text())
        results["final"].update(asr_lifespan=life, asr_lifespan_censored=censored)
        path.write_text(json.dumps(results))
    run_writer(tmp_path, defense="fedavg", attack="none", seed=0, accuracy=0.9)
    assert main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "Backdoor ASR and lifespan" in text
    assert "| fedavg | backdoor | 0.8000 ± 0.0000 | ≥ 5.0000 ± 1.4142 |" in text
