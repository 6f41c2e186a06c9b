"""The one Flower ClientApp every engine runs (:mod:`fedpoison.clients.app`)."""
