"""Robust aggregation rules: pure torch functions on an (n, d) update matrix.

Importing this package registers every rule in ``AGGREGATORS`` (the ``defense=<name>``
options) and every pre-aggregator in ``PRE_AGGREGATORS``. It exports the rule functions
(on the update matrix of docs/conventions.md §C1) and the rule classes. Because a function
shares its module's name (``fedpoison.aggregators.krum`` is the function ``krum`` here),
config targets name the classes at package level (``fedpoison.aggregators.Krum``); ``from
fedpoison.aggregators.krum import krum_scores`` still imports from the module.
"""

from fedpoison.aggregators.arc import ARC, arc
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.bulyan import Bulyan, bulyan
from fedpoison.aggregators.caf import CAF, caf
from fedpoison.aggregators.centered_clipping import CenteredClipping, centered_clipping
from fedpoison.aggregators.cge import CGE, cge
from fedpoison.aggregators.crfl import CRFL, crfl
from fedpoison.aggregators.deepsight import DeepSight
from fedpoison.aggregators.dnc import DnC, dnc
from fedpoison.aggregators.flame import Flame, flame
from fedpoison.aggregators.flat_model import FlatModel
from fedpoison.aggregators.fldetector import FLDetector, lbfgs_hvp
from fedpoison.aggregators.fltrust import FLTrust, fltrust
from fedpoison.aggregators.foolsgold import FoolsGold, foolsgold
from fedpoison.aggregators.foundationfl import FoundationFL, foundationfl
from fedpoison.aggregators.geometric_median import GeometricMedian, geometric_median
from fedpoison.aggregators.krum import Krum, krum, krum_scores
from fedpoison.aggregators.mda import MDA, mda
from fedpoison.aggregators.meamed import Meamed, meamed
from fedpoison.aggregators.mean import FedAvg, mean
from fedpoison.aggregators.median import Median, median
from fedpoison.aggregators.monna import MoNNA, monna
from fedpoison.aggregators.multi_krum import MultiKrum, multi_krum
from fedpoison.aggregators.norm_clipping import NormClipping, norm_clipping
from fedpoison.aggregators.pipeline import Defense, build_defense
from fedpoison.aggregators.pre import PRE_AGGREGATORS, PreAggregator
from fedpoison.aggregators.rlr import RLR, rlr
from fedpoison.aggregators.signguard import SignGuard, signguard
from fedpoison.aggregators.smea import SMEA, smea
from fedpoison.aggregators.trimmed_mean import TrimmedMean, trimmed_mean
from fedpoison.aggregators.weak_dp import WeakDP, weak_dp

__all__ = [
    "AGGREGATORS",
    "ARC",
    "CAF",
    "CGE",
    "CRFL",
    "MDA",
    "PRE_AGGREGATORS",
    "RLR",
    "SMEA",
    "AggregationResult",
    "Aggregator",
    "Bulyan",
    "CenteredClipping",
    "DeepSight",
    "Defense",
    "DnC",
    "FLDetector",
    "FLTrust",
    "FedAvg",
    "Flame",
    "FlatModel",
    "FoolsGold",
    "FoundationFL",
    "GeometricMedian",
    "Krum",
    "Meamed",
    "Median",
    "MoNNA",
    "MultiKrum",
    "NormClipping",
    "PreAggregator",
    "RoundContext",
    "SignGuard",
    "TrimmedMean",
    "WeakDP",
    "arc",
    "build_defense",
    "bulyan",
    "caf",
    "centered_clipping",
    "cge",
    "crfl",
    "dnc",
    "flame",
    "fltrust",
    "foolsgold",
    "foundationfl",
    "geometric_median",
    "krum",
    "krum_scores",
    "lbfgs_hvp",
    "mda",
    "meamed",
    "mean",
    "median",
    "monna",
    "multi_krum",
    "norm_clipping",
    "signguard",
    "rlr",
    "smea",
    "trimmed_mean",
    "weak_dp",
]
