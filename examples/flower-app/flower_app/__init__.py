"""A Flower app, written as Flower's quickstart writes one, using fedpoison as a library."""
