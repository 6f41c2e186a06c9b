"""``fedpoison-partitions``: show how a partitioner splits a dataset among clients.

    fedpoison-partitions --dataset digits --partition fang --q 0.5 --num-clients 20 --seed 0
                         [--out heatmap.png]

The dataset and partitioner are built from their packaged configs
(``fedpoison/conf/{dataset,partition}/<name>.yaml``, composed with OmegaConf and built with
``hydra.utils.instantiate``); any further ``--field value`` overrides a field of the
partition config (``--q``, ``--alpha``, ``--shards-per-client``, ...). The split uses the
same generator as a run with that seed (``numpy_rng(seed, PARTITION)``), so what is shown
is what ``fedpoison`` trains on. Prints per-client label histograms; with ``--out``, also
writes them as a PNG heat map.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from fedpoison.data.partition import assign
from fedpoison.data.skew import label_counts, total_variation
from fedpoison.seeding import PARTITION, numpy_rng


def _config(group: str, name: str) -> DictConfig:
    """The packaged ``conf/<group>/<name>.yaml``; exits listing the choices if it is unknown."""
    directory = files("fedpoison") / "conf" / group
    path = directory / f"{name}.yaml"
    if not path.is_file():
        choices = sorted(
            p.name.removesuffix(".yaml") for p in directory.iterdir() if p.name.endswith(".yaml")
        )
        raise SystemExit(
            f"fedpoison-partitions: unknown {group} {name!r}; choose from {', '.join(choices)}"
        )
    return cast(DictConfig, OmegaConf.create(path.read_text(encoding="utf-8")))


def _overrides(extra: Sequence[str], config: DictConfig) -> list[str]:
    """``["--q", "0.5", "--min-size=3"]`` → ``["q=0.5", "min_size=3"]``, checked against
    ``config``."""
    pairs: list[str] = []
    items = list(extra)
    while items:
        flag = items.pop(0)
        if not flag.startswith("--"):
            raise SystemExit(f"fedpoison-partitions: unexpected argument {flag!r}")
        key, _, value = flag[2:].partition("=")
        if not value:
            if not items:
                raise SystemExit(f"fedpoison-partitions: {flag} needs a value")
            value = items.pop(0)
        key = key.replace("-", "_")
        if key.startswith("_") or key not in config:
            known = ", ".join(
                f"--{str(k).replace('_', '-')}" for k in config if not str(k).startswith("_")
            )
            raise SystemExit(
                f"fedpoison-partitions: this partitioner has no --{key}; "
                f"it takes: {known or 'nothing'}"
            )
        pairs.append(f"{key}={value}")
    return pairs


def format_table(counts: np.ndarray) -> str:
    """Per-client label histogram as a text table, with totals and the skew of each client."""
    tv = total_variation(counts)
    width = max(5, len(str(int(counts.max(initial=0)))) + 1)
    header = (
        "client"
        + "".join(f"{c:>{width}}" for c in range(counts.shape[1]))
        + f"{'total':>8}{'TV':>7}"
    )
    rows = [
        f"{k:>6}" + "".join(f"{v:>{width}}" for v in row) + f"{row.sum():>8}{tv[k]:>7.3f}"
        for k, row in enumerate(counts)
    ]
    footer = (
        f"{'all':>6}"
        + "".join(f"{v:>{width}}" for v in counts.sum(axis=0))
        + f"{counts.sum():>8}{tv.mean():>7.3f}"
    )
    return "\n".join([header, *rows, footer])


def write_heatmap(counts: np.ndarray, path: Path, title: str) -> None:
    """Clients × classes heat map of example counts, written as PNG with the Agg backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    num_clients, num_classes = counts.shape
    fig = Figure(figsize=(1.5 + 0.45 * num_classes, 1.5 + 0.22 * num_clients))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(counts, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xlabel("class")
    ax.set_ylabel("client")
    ax.set_xticks(range(num_classes))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="examples")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fedpoison-partitions``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="fedpoison-partitions",
        allow_abbrev=False,
        description="Show per-client label histograms of a partition. Extra --field value "
        "options override the partition config (e.g. --q 0.5, --alpha 0.1, --shards-per-client 2).",
    )
    parser.add_argument("--dataset", default="digits", help="dataset config name (default: digits)")
    parser.add_argument("--partition", default="iid", help="partition config name (default: iid)")
    parser.add_argument(
        "--num-clients", type=int, default=20, help="number of clients (default: 20)"
    )
    parser.add_argument("--seed", type=int, default=0, help="run seed (default: 0)")
    parser.add_argument("--data-root", help="dataset directory (sets dataset.root)")
    parser.add_argument("--out", type=Path, help="write a PNG heat map here")
    args, extra = parser.parse_known_args(argv)

    dataset_cfg = _config("dataset", args.dataset)
    if args.data_root is not None:
        dataset_cfg.root = args.data_root
    partition_cfg = _config("partition", args.partition)
    # Merging into a DictConfig gives a DictConfig; the stub's union also covers ListConfig.
    partition_cfg = cast(
        DictConfig,
        OmegaConf.merge(partition_cfg, OmegaConf.from_dotlist(_overrides(extra, partition_cfg))),
    )

    dataset = instantiate(dataset_cfg)
    partitioner = instantiate(partition_cfg)
    labels = dataset.y_train.numpy()
    parts = assign(partitioner, dataset, args.num_clients, numpy_rng(args.seed, PARTITION))
    counts = label_counts(labels, parts, dataset.num_classes)

    # A DictConfig's container is a dict; the stub's union also covers lists, strings and None.
    container = cast(dict[str, Any], OmegaConf.to_container(partition_cfg, resolve=True))
    params = {k: v for k, v in container.items() if not str(k).startswith("_") and v is not None}
    name = params.pop("name", args.partition)  # partition=flwr: flwr-<partitioner>
    title = f"{dataset.name}, {name} {params}, {args.num_clients} clients, seed {args.seed}"
    print(title)
    print(format_table(counts))
    if args.out is not None:
        write_heatmap(counts, args.out, title)
        print(f"heat map written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
