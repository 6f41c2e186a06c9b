"""fedpoison: federated-learning poisoning attacks and robust aggregation on Flower."""

__version__ = "0.1.0"
