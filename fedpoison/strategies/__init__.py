"""Flower server-side adapters: ``RobustStrategy`` (plan → replies → round → record) and the
``Adversary`` wrapper that attacks through any Flower ``Strategy``."""
