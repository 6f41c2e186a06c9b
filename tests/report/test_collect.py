"""Naming runs from their config, and what makes two runs the same configuration."""

from __future__ import annotations

import json

import pytest

from fedpoison.report.collect import dataset_name, defense_name, load_study, snake_case


@pytest.mark.parametrize(
    ("cls", "name"),
    [
        ("FedAvg", "fedavg"),
        ("Krum", "krum"),
        ("MultiKrum", "multi_krum"),
        ("TrimmedMean", "trimmed_mean"),
        ("Median", "median"),
        ("Bulyan", "bulyan"),
        ("GeometricMedian", "geometric_median"),
        ("CenteredClipping", "centered_clipping"),
        ("NormClipping", "norm_clipping"),
        ("FLTrust", "fltrust"),
        ("Flame", "flame"),
        ("FLAME", "flame"),
        ("FoolsGold", "foolsgold"),
        ("DnC", "dnc"),
        ("SignSGDMajority", "sign_sgd_majority"),
    ],
)
def test_class_names_map_to_registry_names(cls, name):
    assert snake_case(cls) == name
    assert defense_name({"_target_": f"fedpoison.aggregators.x.{cls}", "pre": []}) == name


def test_defense_name_prefers_name_and_appends_pre_steps():
    target = "fedpoison.aggregators.krum.Krum"
    assert defense_name({"_target_": target, "name": "my_krum"}) == "my_krum"
    pre = ["nnm", {"name": "bucketing", "s": 2}]
    assert defense_name({"_target_": target, "pre": pre}) == "krum+nnm+bucketing"


def test_dataset_name_from_loader():
    assert dataset_name({"_target_": "fedpoison.data.mnist.load_fashion_mnist"}) == "fashion_mnist"
    assert dataset_name({"_target_": "fedpoison.data.digits.load_digits", "name": "d"}) == "d"


def test_variant_holds_only_settings_that_differ_within_a_name(tmp_path, run_writer):
    run_writer(tmp_path / "a", defense="fedavg", attack="alie", seed=0, accuracy=0.5)
    run_writer(tmp_path / "b", defense="fedavg", attack="alie", seed=1, accuracy=0.5, num_rounds=5)
    run_writer(tmp_path / "c", defense="trimmed_mean", attack="alie", seed=0, accuracy=0.5)
    path = tmp_path / "c" / "trimmed_mean-alie-f4-seed0" / "results.json"
    data = json.loads(path.read_text())
    data["config"]["progress"] = True  # display only: never a configuration difference
    path.write_text(json.dumps(data))
    runs = {run.path.parent.name: run for run in load_study(tmp_path).runs}
    assert runs["a"].variant == "num_rounds=3"
    assert runs["b"].variant == "num_rounds=5"
    assert runs["c"].variant == "num_rounds=3"
    assert (runs["a"].defense, runs["a"].attack, runs["a"].num_malicious, runs["a"].seed) == (
        "fedavg", "alie", 4, 0,
    )  # fmt: skip
    assert runs["a"].dataset == "digits"
