"""The Flower ClientApp (:mod:`fedpoison.clients.app`) and local training (:mod:`fedpoison.training.local`)."""
