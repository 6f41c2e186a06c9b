"""dataset=hf: a local Hugging Face dataset becomes the tensors the built-in datasets produce;
missing columns and splits fail before round 1; a missing extra names its install line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fedpoison_testing import compose_config, fedpoison, run_simulation

pytest.importorskip("datasets", reason="dataset=hf needs the hf extra (pip install '.[hf]')")
pytest.importorskip("flwr_datasets", reason="partition=flwr needs the hf extra")

from fedpoison.config import ConfigError  # noqa: E402
from fedpoison.data.hf import load_hf  # noqa: E402
from fedpoison.report.collect import load_study  # noqa: E402
from fedpoison.run import prepare  # noqa: E402

NUM_CLASSES, TRAIN, TEST = 4, 120, 40


def pixels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 8×8 images whose brightness encodes the class, and their labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % NUM_CLASSES
    images = rng.integers(0, 60, size=(n, 8, 8)) + 60 * labels[:, None, None]
    return images.astype(np.uint8), labels


def write_disk(root: Path) -> Path:
    """A ``DatasetDict({"train", "test"}).save_to_disk`` directory with an ``Image`` column,
    a ``ClassLabel`` label and a ``writer`` id column."""
    import datasets
    from PIL import Image

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "label": datasets.ClassLabel(num_classes=NUM_CLASSES),
            "writer": datasets.Value("int64"),
        }
    )

    def split(n: int, seed: int) -> datasets.Dataset:
        images, labels = pixels(n, seed)
        return datasets.Dataset.from_dict(
            {
                "image": [Image.fromarray(im, mode="L") for im in images],
                "label": labels.tolist(),
                "writer": (np.arange(n) % 5).tolist(),
            },
            features=features,
        )

    path = root / "tiny-hf"
    datasets.DatasetDict({"train": split(TRAIN, 0), "test": split(TEST, 1)}).save_to_disk(path)
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A fresh Hugging Face home (nothing cached) and no Hub."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return tmp_path


@pytest.fixture
def disk(offline: Path) -> Path:
    return write_disk(offline)


def test_save_to_disk_images_become_standardised_tensors(disk: Path) -> None:
    data = load_hf(str(disk), keep_columns=["writer"])
    assert data.name == "tiny-hf" and data.num_classes == NUM_CLASSES
    assert data.x_train.shape == (TRAIN, 1, 8, 8) and data.x_test.shape == (TEST, 1, 8, 8)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    train, labels = pixels(TRAIN, 0)
    test, _ = pixels(TEST, 1)
    scaled = train.astype(np.float64) / 255.0
    mean, std = scaled.mean(), scaled.std()
    np.testing.assert_allclose(data.x_train[:, 0].numpy(), (scaled - mean) / std, atol=1e-5)
    np.testing.assert_allclose(data.x_test[:, 0].numpy(), (test / 255.0 - mean) / std, atol=1e-5)
    assert data.y_train.tolist() == labels.tolist()
    assert data.columns["writer"].tolist() == (np.arange(TRAIN) % 5).tolist()
    raw = load_hf(str(disk), normalize=False)
    np.testing.assert_allclose(raw.x_train[:, 0].numpy(), scaled, atol=1e-6)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["HF_DATASETS_OFFLINE"] == "1"


def test_parquet_files_and_csv_columns(offline: Path) -> None:
    import datasets

    files = offline / "parquet"
    files.mkdir()
    for split, n in (("train", 30), ("test", 10)):
        rows = {"pixels": np.arange(n * 6).reshape(n, 6).tolist(), "y": [i % 3 for i in range(n)]}
        datasets.Dataset.from_dict(rows).to_parquet(files / f"{split}.parquet")
    data = load_hf(str(files), format="parquet", image_column="pixels", label_column="y")
    assert data.input_shape == (1, 1, 6) and data.num_classes == 3
    csv = offline / "csv"
    csv.mkdir()
    for split, n in (("train", 30), ("test", 10)):
        lines = ["a,b,label", *(f"{i},{2 * i},{i % 2}" for i in range(n))]
        (csv / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = load_hf(str(csv), format="csv", image_column=["a", "b"], normalize=False)
    assert table.input_shape == (1, 1, 2) and table.num_classes == 2
    assert table.x_train[3, 0, 0].tolist() == [3.0, 6.0]


@pytest.mark.parametrize(
    "override, message",
    [
        ("dataset.label_column=digit", "no column 'digit'; it has image, label, writer"),
        ("dataset.image_column=img", "no column 'img'"),
        ("dataset.test_split=validation", "has no split 'validation'; it has train, test"),
        ("dataset.keep_columns=[author]", "no column 'author'"),
    ],
)
def test_a_missing_column_or_split_is_a_config_error(
    disk: Path, override: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        prepare(compose_config(["dataset=hf", f"dataset.path={disk}", override]))


def test_no_path_is_a_config_error(offline: Path) -> None:
    with pytest.raises(ConfigError, match="dataset=hf needs dataset.path=DIR"):
        prepare(compose_config(["dataset=hf"]))


def test_a_missing_extra_names_the_install_line(
    disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets → ImportError
    with pytest.raises(ConfigError, match=r"pip install 'fedpoison\[hf\]'"):
        prepare(compose_config(["dataset=hf", f"dataset.path={disk}"]))


FLWR_RUN = [
    "partition=flwr",
    "partition.partitioner=dirichlet",
    "partition.alpha=0.5",
    "partition.min_partition_size=5",
    "federation.num_clients=6",
    "threat.num_malicious=1",
    "attack=sign_flip",
    "defense=median",
    "num_rounds=3",
    "checkpoint_every=0",
    "progress=false",
]


def test_hf_dataset_with_a_flwr_partitioner_runs_and_records_it(disk: Path) -> None:
    """The acceptance run, as a user types it: 3 rounds; results.json and the summary line
    name the flwr-datasets partitioner."""
    run_dir = disk.parent / "run"
    done = fedpoison("dataset=hf", f"dataset.path={disk}", *FLWR_RUN, f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr
    assert "partition=flwr-dirichlet" in done.stdout
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    assert len(results["rounds"]) == 3 and results["status"] == "complete"
    assert results["choices"]["partition"] == "flwr-dirichlet"
    assert results["config"]["partition"]["partitioner"] == "dirichlet"
    assert results["config"]["dataset"]["path"] == str(disk)
    (run,) = load_study(run_dir).runs
    assert run.settings["partition.name"] == '"flwr-dirichlet"'  # the report's settings


def test_natural_id_splits_by_a_kept_column(disk: Path, tmp_path: Path) -> None:
    overrides = [
        "dataset=hf",
        f"dataset.path={disk}",
        "dataset.keep_columns=[writer]",
        "partition=flwr",
        "partition.partitioner=natural_id",
        "partition.id_column=writer",
        "federation.num_clients=5",
        "threat.num_malicious=1",
        "defense=median",
    ]
    sim = prepare(compose_config(overrides))
    writers = sim.federation.data.columns["writer"]
    by_client = [set(writers[p].tolist()) for p in sim.federation.partitions]
    assert by_client == [{0}, {1}, {2}, {3}, {4}]
    with pytest.raises(ConfigError, match="makes 5 partitions; set federation.num_clients=5"):
        prepare(compose_config([*overrides, "federation.num_clients=6"]))
    with pytest.raises(ConfigError, match="needs partition.id_column"):
        prepare(compose_config([*overrides[:-4], "partition.partitioner=natural_id"]))
    results = run_simulation([*overrides, "num_rounds=1", "progress=false"], tmp_path / "r")
    assert len(results["rounds"]) == 1


def test_fedpoison_partitions_shows_a_flwr_partitioner(capsys: pytest.CaptureFixture[str]) -> None:
    """The same split as a run with that seed, through fedpoison-partitions."""
    from fedpoison.partitions_cli import main

    args = ["--partition", "flwr", "--partitioner", "shard", "--num-shards-per-partition", "2"]
    assert main([*args, "--num-clients", "10", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "flwr-shard" in out and "'num_shards_per_partition': 2" in out
    sim = prepare(
        compose_config(
            [
                "partition=flwr",
                "partition.partitioner=shard",
                "partition.num_shards_per_partition=2",
                "federation.num_clients=10",
                "threat.num_malicious=1",
                "seed=3",
            ]
        )
    )
    rows = out.splitlines()[2:12]
    assert [int(r.split()[-2]) for r in rows] == [len(p) for p in sim.federation.partitions]
    with pytest.raises(SystemExit, match="has no --alpah"):
        main(["--partition", "flwr", "--alpah", "0.3"])
