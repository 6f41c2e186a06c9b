"""Every dataset and partition config composes, instantiates and documents its fields."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from fedpoison.data import DATASETS, PARTITIONERS, ImageDataset

CONF = Path(__file__).resolve().parents[2] / "fedpoison" / "conf"
DATASET_YAMLS = sorted((CONF / "dataset").glob("*.yaml"))
PARTITION_YAMLS = sorted((CONF / "partition").glob("*.yaml"))


def _fields_without_comment(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        ln for ln in lines if ln and not ln.startswith(("#", "_")) and ":" in ln and "#" not in ln
    ]


@pytest.mark.parametrize(
    "path", DATASET_YAMLS + PARTITION_YAMLS, ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_every_field_has_a_comment(path: Path) -> None:
    assert _fields_without_comment(path) == []


@pytest.mark.parametrize("path", DATASET_YAMLS, ids=lambda p: p.stem)
def test_dataset_config_targets_the_registered_loader(path: Path) -> None:
    config = OmegaConf.load(path)
    loader = instantiate(config, _partial_=True)
    assert loader.func is DATASETS.get(path.stem)
    inspect.signature(loader.func).bind(**loader.keywords)  # every field is a parameter


def test_digits_config_builds_the_dataset() -> None:
    dataset = instantiate(OmegaConf.load(CONF / "dataset" / "digits.yaml"))
    assert isinstance(dataset, ImageDataset) and dataset.input_shape == (1, 8, 8)


@pytest.mark.parametrize("path", PARTITION_YAMLS, ids=lambda p: p.stem)
def test_partition_config_splits_labels(path: Path) -> None:
    if path.stem == "flwr":
        pytest.importorskip("flwr_datasets", reason="partition=flwr needs the hf extra")
    partitioner = instantiate(OmegaConf.load(path))
    assert partitioner.func is PARTITIONERS.get(path.stem)
    labels = np.repeat(np.arange(10), 50)
    parts = partitioner(labels, 20, np.random.default_rng(0))
    assert len(parts) == 20 and sum(len(p) for p in parts) == len(labels)


def test_every_registered_name_has_a_config() -> None:
    assert {p.stem for p in DATASET_YAMLS} == set(DATASETS.names())
    assert {p.stem for p in PARTITION_YAMLS} == set(PARTITIONERS.names())
