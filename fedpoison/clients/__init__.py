"""The Flower ClientApp: local training, evaluation and data poisoning."""

from fedpoison.clients.app import ClientSpec, make_client_app

__all__ = ["ClientSpec", "make_client_app"]
