"""Data attacks for a user's own ClientApp: :func:`poison_data` and :class:`PoisonedDataset`.

A malicious client of fedpoison's own ClientApp poisons its partition before local training
(:meth:`~fedpoison.attacks.base.DataAttack.poison`, docs/conventions.md §C27): these two do
the same in any ClientApp, on tensors or on a ``torch.utils.data.Dataset``, deciding from
the node's partition id with the same threat model and the same seeding
(``torch_generator(seed, DATA_ATTACK, partition)``: a client poisons the same examples in
every round), so a user's app and the CLI poison identically for the same seed and partition.

Attack success rate: build the attack once and keep it. The clients poison with it; the
server evaluates the global model on ``attack.success_set(x_test, y_test)`` (a backdoor's
triggered test inputs whose true label is not the target, labelled with the target; ``None``
for label flipping), e.g. in the ``evaluate_fn`` of ``strategy.start``: the accuracy there
is the attack success rate fedpoison's CLI reports as ``asr``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack
from fedpoison.attacks.shaping import ClientRound, Shaping
from fedpoison.attacks.threat import ThreatModel
from fedpoison.clients.malicious import MaliciousPartitions
from fedpoison.data.base import ImageDataset
from fedpoison.seeding import ADVERSARY, DATA_ATTACK, torch_generator


@dataclass(frozen=True)
class MaliciousRound:
    """A node's data for one round and, when it attacks with a shaping attack, how it trains.

    Attributes:
        x, y: the training data (poisoned when the node attacks in this round).
        shaping: the :class:`~fedpoison.attacks.shaping.Shaping` its local training calls
            (``after_backward``/``after_step``/``finish``: fedpoison's
            :func:`~fedpoison.training.local.local_train` takes it as ``hook=``), or
            ``None``: plain training.
        attacking: whether the node attacks in this round.
    """

    x: torch.Tensor
    y: torch.Tensor
    shaping: Shaping | None = None
    attacking: bool = False


def malicious_round(
    x: torch.Tensor,
    y: torch.Tensor,
    attack: DataAttack | str,
    *,
    partition_id: int,
    num_classes: int,
    model: nn.Module | None = None,
    dataset: ImageDataset | None = None,
    previous_global: tuple[torch.Tensor, ...] | None = None,
    leader: tuple[torch.Tensor, torch.Tensor] | None = None,
    malicious: Iterable[int] | None = None,
    num_malicious: int | None = None,
    threat: ThreatModel | None = None,
    num_partitions: int | None = None,
    start_round: int = 1,
    end_round: int | None = None,
    server_round: int | None = None,
    seed: int = 0,
) -> MaliciousRound:
    """:func:`poison_data` plus the attack's shaping of local training (PGD's projection,
    Neurotoxin's gradient mask, ...; :mod:`fedpoison.attacks.shaping`), as fedpoison's
    ClientApp runs it: ``attack.for_client(client)`` (DBA's piece by the node's rank in the
    sorted malicious pool), then its ``poison`` and ``shaping``.

    Args:
        model: the node's model holding the received global weights (needed by the attacks
            that shape training or read the model: ``pgd``, ``neurotoxin``, ``edge_case``);
            call this after loading the global model, before training.
        dataset: the federation's dataset (``edge_case`` builds its edge set from it).
        previous_global: the trainable parameters of the global model the node received
            the last time before (Neurotoxin's ``global_diff``), or ``None``.
        leader: the clean partition of the malicious pool's first attacker (A3FL's shared
            trigger search), or ``None``.
        Everything else: as :func:`poison_data`.

    Returns:
        A :class:`MaliciousRound`; for a benign node or an inactive round, ``x``, ``y``
        themselves, no shaping and ``attacking=False``.
    """
    built = _data_attack(attack)
    partitions = MaliciousPartitions.resolve(
        "malicious_round",
        malicious=malicious,
        num_malicious=num_malicious,
        threat=threat,
        num_partitions=num_partitions,
        start_round=start_round,
        end_round=end_round,
        seed=seed,
    )
    return _poison_round(
        built,
        partitions,
        x,
        y,
        partition_id,
        num_classes,
        server_round,
        seed,
        model=model,
        dataset=dataset,
        previous_global=previous_global,
        leader=leader,
    )


def _poison_round(
    attack: DataAttack,
    partitions: MaliciousPartitions,
    x: torch.Tensor,
    y: torch.Tensor,
    partition_id: int,
    num_classes: int,
    server_round: int | None,
    seed: int,
    *,
    model: nn.Module | None = None,
    dataset: ImageDataset | None = None,
    previous_global: tuple[torch.Tensor, ...] | None = None,
    leader: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> MaliciousRound:
    """``attack`` bound to this node (:meth:`DataAttack.for_client`), its poisoned data and
    its shaping, when ``partitions`` attack with ``partition_id`` in ``server_round``."""
    if not partitions.attacking(partition_id, server_round):
        return MaliciousRound(x, y)
    pool = sorted(partitions.ids)
    round_key = 0 if server_round is None else server_round
    client = ClientRound(
        model=model,
        x=x,
        y=y,
        num_classes=num_classes,
        rank=pool.index(partition_id),
        num_malicious=len(pool),
        server_round=round_key,
        generator=torch_generator(seed, ADVERSARY, round_key, partition_id),
        previous_global=previous_global,
        dataset=dataset,
        leader=leader,
    )
    bound = attack.for_client(client)
    px, py = bound.poison(x, y, num_classes, torch_generator(seed, DATA_ATTACK, partition_id))
    return MaliciousRound(px, py, bound.shaping(client), attacking=True)


def poison_data(
    x: torch.Tensor,
    y: torch.Tensor,
    attack: DataAttack | str,
    *,
    partition_id: int,
    num_classes: int,
    malicious: Iterable[int] | None = None,
    num_malicious: int | None = None,
    threat: ThreatModel | None = None,
    num_partitions: int | None = None,
    start_round: int = 1,
    end_round: int | None = None,
    server_round: int | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A node's training data, poisoned by ``attack`` when its partition is malicious.

    Args:
        x: the partition's inputs, float32 ``(N, C, H, W)`` for image attacks (backdoor).
        y: the labels, int64 ``(N,)`` in ``[0, num_classes)``.
        attack: a :class:`~fedpoison.attacks.base.DataAttack` (``LabelFlip()``,
            ``Backdoor(target=0)``, ...) or a registered name (``"label_flip"``, ...).
        partition_id: this node's ``context.node_config["partition-id"]``.
        num_classes: the number of classes of the dataset.
        malicious, num_malicious, threat, num_partitions, start_round, end_round, seed: who
            is malicious and when, exactly as :func:`~fedpoison.clients.mods.poison_mod`
            takes them (``num_malicious=k, num_partitions=n, seed=s`` picks the partitions
            fedpoison's CLI picks).
        server_round: the round the data is for (the train message's
            ``config["server-round"]``); ``None`` = poison regardless of the round (data
            loaded once), allowed only when the attack acts in every round.

    Attacks that also shape the malicious training (``pgd``, ``neurotoxin``, ``edge_case``)
    need :func:`malicious_round`, which returns the data and the shaping; here only their
    data is returned.

    Returns:
        ``(x, y)`` themselves when the partition is benign or the attack inactive, else new
        poisoned tensors (same shapes and dtypes; the inputs are not modified).

    Example: labels ``l → 9 − l`` on a malicious partition, untouched on a benign one.

        >>> import torch
        >>> from fedpoison.clients import poison_data
        >>> x, y = torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
        >>> kw = dict(num_classes=10, num_malicious=2, num_partitions=10, seed=0)
        >>> poison_data(x, y, "label_flip", partition_id=4, **kw)[1].tolist()
        [9, 8, 7, 6]
        >>> poison_data(x, y, "label_flip", partition_id=1, **kw)[1] is y
        True
    """
    built = _data_attack(attack)
    partitions = MaliciousPartitions.resolve(
        "poison_data",
        malicious=malicious,
        num_malicious=num_malicious,
        threat=threat,
        num_partitions=num_partitions,
        start_round=start_round,
        end_round=end_round,
        seed=seed,
    )
    done = _poison_round(built, partitions, x, y, partition_id, num_classes, server_round, seed)
    return done.x, done.y


class PoisonedDataset(Dataset[Any]):
    """``dataset`` as a malicious node trains on it: poisoned by ``attack`` when its partition
    is malicious (with :func:`poison_data`), the very same items otherwise.

    A malicious partition is read once, at construction (``dataset[i]`` for every ``i``,
    transforms included), stacked into ``(N, ...)`` tensors, poisoned as a whole (the attack
    picks a fraction of the partition) and served from memory; a benign one is served by
    ``dataset`` itself.

    Args:
        dataset: a map-style dataset whose items are ``(input, label)`` pairs (torchvision)
            or mappings (Flower Datasets / Hugging Face with a transform, e.g.
            ``{"img": tensor, "label": int}``: give their ``keys``). Inputs must be tensors.
        attack: as :func:`poison_data`.
        keys: ``(input key, label key)`` of mapping items; a poisoned item is then the
            mapping ``{input key: x_i, label key: y_i}``.
        partition_id, num_classes, malicious, num_malicious, threat, num_partitions,
            start_round, end_round, server_round, seed: as :func:`poison_data`.

    Attributes:
        poisoned: whether this node's data is poisoned.

    Example: one line around the partition a ClientApp already loads; the same attack
    object gives the server its attack-success-rate set.

        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from fedpoison.attacks import Backdoor
        >>> from fedpoison.clients import PoisonedDataset
        >>> backdoor = Backdoor(target=0)  # a 3×3 trigger, half the partition relabelled 0
        >>> partition = TensorDataset(torch.zeros(6, 1, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]))
        >>> data = PoisonedDataset(partition, backdoor, partition_id=0, num_classes=3,
        ...                        malicious=[0])
        >>> x, y = next(iter(DataLoader(data, batch_size=6)))
        >>> data.poisoned, y.tolist(), x[1, 0, -1, -1].item()
        (True, [0, 0, 2, 0, 1, 0], 1.0)
        >>> x_asr, y_asr = backdoor.success_set(torch.zeros(4, 1, 8, 8), torch.tensor([0, 1, 2, 1]))
        >>> x_asr.shape[0], y_asr.tolist()  # server side: accuracy here = attack success rate
        (3, [0, 0, 0])
    """

    def __init__(
        self,
        dataset: Dataset[Any],
        attack: DataAttack | str,
        *,
        partition_id: int,
        num_classes: int,
        keys: tuple[str, str] | None = None,
        malicious: Iterable[int] | None = None,
        num_malicious: int | None = None,
        threat: ThreatModel | None = None,
        num_partitions: int | None = None,
        start_round: int = 1,
        end_round: int | None = None,
        server_round: int | None = None,
        seed: int = 0,
    ) -> None:
        built = _data_attack(attack)
        partitions = MaliciousPartitions.resolve(
            "PoisonedDataset",
            malicious=malicious,
            num_malicious=num_malicious,
            threat=threat,
            num_partitions=num_partitions,
            start_round=start_round,
            end_round=end_round,
            seed=seed,
        )
        self.dataset = dataset
        self.keys = keys
        self.poisoned = partitions.attacking(partition_id, server_round)
        self._data: tuple[torch.Tensor, torch.Tensor] | None = None
        if self.poisoned:
            x, y = _stack(dataset, keys)
            done = _poison_round(
                built, partitions, x, y, partition_id, num_classes, server_round, seed
            )
            self._data = done.x, done.y

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        if self._data is None:
            return self.dataset[index]
        x, y = self._data[0][index], self._data[1][index]
        return (x, y) if self.keys is None else {self.keys[0]: x, self.keys[1]: y}


def _stack(
    dataset: Dataset[Any], keys: tuple[str, str] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item of ``dataset`` stacked: inputs ``(N, ...)`` and int64 labels ``(N,)``."""
    inputs, labels = [], []
    for index in range(len(dataset)):  # type: ignore[arg-type]
        item = dataset[index]
        if keys is None:
            if isinstance(item, Mapping):
                raise TypeError("PoisonedDataset: the items are mappings; pass keys=(input, label)")
            x, label = item
        else:
            x, label = item[keys[0]], item[keys[1]]
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"PoisonedDataset: inputs must be tensors, got {type(x).__name__} (apply a "
                "ToTensor transform first)"
            )
        inputs.append(x)
        labels.append(int(label))
    return torch.stack(inputs), torch.tensor(labels, dtype=torch.int64)


def _data_attack(attack: DataAttack | str) -> DataAttack:
    if isinstance(attack, str):
        return DATA_ATTACKS.build(attack, "attack")
    if not isinstance(attack, DataAttack):
        raise TypeError(
            f"attack must be a DataAttack or a registered data attack name, got "
            f"{type(attack).__name__} (update attacks and reply faults: poison_mod)"
        )
    return attack
