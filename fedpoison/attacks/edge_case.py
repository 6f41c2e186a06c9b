"""Edge-case backdoor (Wang et al., NeurIPS 2020, "Attack of the Tails: Yes, You Really Can
Backdoor Federated Learning"; REFERENCES D34), on an edge-case set built offline."""

from __future__ import annotations

import copy
import math
from typing import ClassVar

import torch

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack
from fedpoison.attacks.label_flip import poison_indices
from fedpoison.attacks.pgd import NORMS, Projection
from fedpoison.attacks.shaping import ClientRound, Shaping

TAILS = ("distance", "direction")


def edge_split(
    x: torch.Tensor,
    y: torch.Tensor,
    source: int,
    q: float,
    components: int,
    seed: int,
    tail: str = "distance",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, test)`` indices into ``(x, y)`` of the edge-case set: the ``⌈q·n_s⌉`` images
    of class ``source`` with the highest tail score under the PCA of that class, shuffled
    with ``seed`` and halved (the first ``⌈k/2⌉`` train). Deterministic; the halves are
    disjoint. Scores (``tail``):

    - ``"distance"``: the distance from the class mean in the ``components``-dimensional PCA
      space (REFERENCES D34's example density: the least likely images, a diverse set);
    - ``"direction"``: the score along the leading principal component (its sign fixed so
      that its largest-magnitude loading is positive): one extreme of the class's main
      style axis, a coherent rare sub-population as ARDIS's European 7s are.
    """
    if tail not in TAILS:
        raise ValueError(f"edge_case: tail must be one of {', '.join(TAILS)}, got {tail!r}")
    if not 0.0 < q <= 1.0:
        raise ValueError(f"edge_case: q must be in (0, 1], got {q}")
    members = torch.nonzero(y == source).flatten()
    if members.numel() < 2:
        raise ValueError(f"edge_case: class {source} has {members.numel()} images; need ≥ 2")
    points = x[members].reshape(members.numel(), -1).double()
    centred = points - points.mean(dim=0)
    basis = torch.linalg.svd(centred, full_matrices=False).Vh[:components]
    if tail == "distance":
        score = torch.linalg.vector_norm(centred @ basis.T, dim=1)
    else:
        leading = basis[0] * basis[0][basis[0].abs().argmax()].sign()
        score = centred @ leading
    size = max(2, math.ceil(q * members.numel()))
    chosen = members[torch.argsort(score, descending=True, stable=True)[:size]]
    chosen = chosen[torch.randperm(size, generator=torch.Generator().manual_seed(seed))]
    half = math.ceil(size / 2)
    return chosen[:half], chosen[half:]


@DATA_ATTACKS.register("edge_case")
class EdgeCase(DataAttack):
    """Train on rare images of one class relabelled to another, by default with PGD.

    Edge-case set (fedpoison's offline construction, REFERENCES D34; the paper uses external
    data: Southwest airplanes → truck, ARDIS 7s → 1): the ``q``-tail of class ``source`` of
    the dataset's **test split** under a PCA model of the class (:func:`edge_split`: by
    default the images farthest from the class mean in the class's
    ``components``-dimensional PCA space; ``tail="direction"``: one end of its leading
    principal component), halved with
    ``split_seed`` into the attacker's edge images and the ASR set. No benign client holds an
    edge image (partitions hold only training images: the paper's ``edge-case`` case, not
    ``normal-case``); the ASR set, still part of the main test set, is labelled ``source``
    there. ASR = the fraction of the ASR half predicted ``target``.

    Poisoning: ``⌊mix·N⌋`` of the attacker's examples (default 0.2, the official CIFAR
    100 : 400 ratio) are replaced by edge images drawn with replacement, labelled
    ``target``; the rest stay clean. Training: PGD (:class:`~fedpoison.attacks.pgd.PGD`)
    with ``eps``, ``project_every``, ``norm`` and the optional boost ``scale``; ``eps=None``
    trains without projection (``scale`` still boosts).

    Args:
        source, target: the edge sub-population's class and the label it should get (default
            7 → 1, echoing ARDIS).
        q: the tail fraction of class ``source`` (test split) in the edge-case set.
        components: dimension of the PCA density model.
        tail: ``distance`` (farthest from the class mean) or ``direction`` (one end of the
            leading principal component), see :func:`edge_split`.
        split_seed: seed of the train/ASR halving.
        mix: fraction of the attacker's examples replaced by edge images.
        eps, project_every, norm, scale: PGD's (``eps=None``: no projection).
    """

    paper: ClassVar[str] = "Wang et al. 2020 (NeurIPS), Attack of the Tails (edge-case)"

    def __init__(
        self,
        source: int = 7,
        target: int = 1,
        q: float = 0.1,
        components: int = 20,
        tail: str = "distance",
        split_seed: int = 0,
        mix: float = 0.2,
        eps: float | None = 2.0,
        project_every: int = 10,
        norm: str = "l2",
        scale: float | None = None,
    ) -> None:
        if source == target:
            raise ValueError(f"edge_case: source and target must differ, both are {source}")
        if not 0.0 < q <= 1.0 or components < 1 or not 0.0 <= mix <= 1.0:
            raise ValueError(
                f"edge_case: need 0 < q ≤ 1, components ≥ 1, 0 ≤ mix ≤ 1; got {q}, "
                f"{components}, {mix}"
            )
        if (eps is not None and not eps > 0) or project_every < 1 or norm not in NORMS:
            raise ValueError(
                f"edge_case: need eps > 0 or null, project_every ≥ 1, norm in {NORMS}; got "
                f"{eps}, {project_every}, {norm!r}"
            )
        if scale is not None and not scale > 0:
            raise ValueError(f"edge_case: scale must be > 0 or null, got {scale}")
        self.source, self.target, self.q = int(source), int(target), float(q)
        if tail not in TAILS:
            raise ValueError(f"edge_case: tail must be one of {', '.join(TAILS)}, got {tail!r}")
        self.components, self.split_seed, self.mix = int(components), int(split_seed), float(mix)
        self.tail = tail
        self.eps = None if eps is None else float(eps)
        self.project_every, self.norm = int(project_every), norm
        self.scale = None if scale is None else float(scale)
        self.edge: torch.Tensor | None = None

    def split(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`edge_split` of the test split ``(x, y)`` with this attack's settings."""
        return edge_split(x, y, self.source, self.q, self.components, self.split_seed, self.tail)

    def for_client(self, client: ClientRound) -> DataAttack:
        """This attack holding its edge images, taken from ``client.dataset``'s test split."""
        if client.dataset is None:
            raise ValueError("edge_case: the malicious client needs the dataset (its edge set)")
        data = client.dataset
        out = copy.copy(self)
        out.edge = data.x_test[self.split(data.x_test, data.y_test)[0]]
        return out

    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.edge is None:
            raise ValueError("edge_case: call for_client first (the edge set is the dataset's)")
        if not (0 <= self.source < num_classes and 0 <= self.target < num_classes):
            raise ValueError(f"edge_case: classes must be in [0, {num_classes - 1}]")
        chosen = poison_indices(torch.arange(y.numel(), device=y.device), self.mix, generator)
        drawn = torch.randint(self.edge.shape[0], (chosen.numel(),), generator=generator)
        x_new, y_new = x.clone(), y.clone()
        x_new[chosen] = self.edge[drawn].to(dtype=x.dtype, device=x.device)
        y_new[chosen] = self.target
        return x_new, y_new

    def success_set(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ASR half of the edge-case set of the test split ``(x, y)``, labelled ``target``."""
        test = self.split(x, y)[1]
        return x[test], torch.full_like(y[test], self.target)

    def shaping(self, client: ClientRound) -> Shaping | None:
        if self.eps is None and self.scale is None:
            return None
        eps = math.inf if self.eps is None else self.eps  # scale alone: boost, no projection
        return Projection(client.parameters(), eps, self.project_every, self.norm, self.scale)
