"""Attacks: data poisoning (client side), update poisoning (server-side adversary stage).

Importing this package imports every attack module, so ``UPDATE_ATTACKS``, ``DATA_ATTACKS``
and ``REPLY_ATTACKS`` are complete. The functional cores are named ``<attack>_attack`` (not
``<attack>``) because a package attribute with a submodule's name would shadow the module
and break Hydra ``_target_`` paths such as ``fedpoison.attacks.alie.ALIE``.
"""

from fedpoison.attacks.a3fl import A3FL
from fedpoison.attacks.adaptive import Adaptive, adaptive_attack
from fedpoison.attacks.alie import ALIE, alie_attack, alie_z_max
from fedpoison.attacks.backdoor import Backdoor
from fedpoison.attacks.base import (
    DATA_ATTACKS,
    REPLY_ATTACKS,
    UPDATE_ATTACKS,
    AdversaryView,
    DataAttack,
    MaliciousReplies,
    UpdateAttack,
)
from fedpoison.attacks.blended import Blended
from fedpoison.attacks.catalogue import attack_catalogue
from fedpoison.attacks.dba import DBA, dba_pieces
from fedpoison.attacks.edge_case import EdgeCase, edge_split
from fedpoison.attacks.fang_krum import FangKrum, fang_krum_attack
from fedpoison.attacks.fang_trim import FangTrim, fang_trim_full, fang_trim_partial
from fedpoison.attacks.gaussian import Gaussian, gaussian_attack
from fedpoison.attacks.infinity import Infinity, infinity_attack
from fedpoison.attacks.ipm import IPM, ipm_attack
from fedpoison.attacks.label_flip import LabelFlip
from fedpoison.attacks.malformed import Malformed
from fedpoison.attacks.mimic import Mimic, mimic_attack
from fedpoison.attacks.min_max import MinMax, min_max_attack, min_max_gamma
from fedpoison.attacks.min_sum import MinSum, min_sum_attack, min_sum_gamma
from fedpoison.attacks.neurotoxin import Neurotoxin, neurotoxin_mask
from fedpoison.attacks.num_examples_inflation import NumExamplesInflation, inflate_num_examples
from fedpoison.attacks.optimal_alie import OptimalALIE, optimal_alie_attack
from fedpoison.attacks.optimal_ipm import OptimalIPM, optimal_ipm_attack
from fedpoison.attacks.pgd import PGD, project
from fedpoison.attacks.scaling import Scaling, replacement_gamma, scaling_attack
from fedpoison.attacks.shaping import ClientRound, Shaping
from fedpoison.attacks.sign_flip import SignFlip, sign_flip_attack
from fedpoison.attacks.spec import AttackSpec, build_attack, build_view, check_attack
from fedpoison.attacks.threat import KNOWLEDGE_ORDER, ThreatModel

__all__ = [
    "A3FL",
    "ALIE",
    "DATA_ATTACKS",
    "DBA",
    "PGD",
    "IPM",
    "Infinity",
    "KNOWLEDGE_ORDER",
    "REPLY_ATTACKS",
    "UPDATE_ATTACKS",
    "Adaptive",
    "AdversaryView",
    "AttackSpec",
    "Backdoor",
    "Blended",
    "ClientRound",
    "DataAttack",
    "EdgeCase",
    "FangKrum",
    "FangTrim",
    "Gaussian",
    "LabelFlip",
    "MaliciousReplies",
    "Malformed",
    "Mimic",
    "MinMax",
    "MinSum",
    "Neurotoxin",
    "NumExamplesInflation",
    "OptimalALIE",
    "OptimalIPM",
    "Scaling",
    "Shaping",
    "SignFlip",
    "ThreatModel",
    "UpdateAttack",
    "adaptive_attack",
    "alie_attack",
    "alie_z_max",
    "attack_catalogue",
    "build_attack",
    "build_view",
    "check_attack",
    "dba_pieces",
    "edge_split",
    "fang_krum_attack",
    "fang_trim_full",
    "fang_trim_partial",
    "gaussian_attack",
    "infinity_attack",
    "inflate_num_examples",
    "ipm_attack",
    "mimic_attack",
    "min_max_attack",
    "min_max_gamma",
    "min_sum_attack",
    "min_sum_gamma",
    "optimal_alie_attack",
    "optimal_ipm_attack",
    "neurotoxin_mask",
    "project",
    "replacement_gamma",
    "scaling_attack",
    "sign_flip_attack",
]
