"""One tiny end-to-end run per engine, and the engines agree."""

import pytest

from fedpoison.outputs import read_results


def _metrics(results):
    return [(r["round"], r["accuracy"], r["loss"]) for r in results["rounds"]]


def test_inline_run_writes_outputs(simulate, tmp_path):
    results = simulate(["engine=inline"])
    assert results["status"] == "complete"
    on_disk = read_results(tmp_path / "run")
    assert on_disk["status"] == "complete" and len(on_disk["rounds"]) == 2
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 3
    for key in (
        "fedpoison",
        "flwr",
        "torch",
        "python",
        "engine",
        "seed",
        "hostname",
        "started",
        "wall_s",
    ):
        assert key in on_disk["provenance"]
    for row in on_disk["rounds"]:
        for key in ("round", "accuracy", "loss", "train_s", "aggregate_s"):
            assert key in row


def test_same_seed_same_metrics_inline(simulate):
    assert _metrics(simulate([], "a")) == _metrics(simulate([], "b"))


def test_different_seed_different_metrics(simulate):
    assert _metrics(simulate(["seed=0"], "a")) != _metrics(simulate(["seed=1"], "b"))


@pytest.mark.ray
def test_ray_two_workers_identical_to_inline(simulate):
    inline = simulate(["engine=inline", "federation.clients_per_round=4"], "inline")
    ray = simulate(["engine=ray", "engine.num_workers=2", "federation.clients_per_round=4"], "ray")
    assert _metrics(ray) == _metrics(inline)
    assert ray["provenance"]["engine"] == "ray" and ray["provenance"]["num_workers"] == 2


@pytest.mark.slow
@pytest.mark.ray
def test_flower_engine_agrees_with_inline(simulate):
    inline = simulate(["engine=inline"], "inline")
    flower = simulate(["engine=flower"], "flower")
    assert flower["final"]["accuracy"] == pytest.approx(inline["final"]["accuracy"], abs=1e-6)
    assert _metrics(flower) == _metrics(inline)
