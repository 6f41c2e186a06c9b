"""``python -m fedpoison`` = the ``fedpoison`` command."""

from fedpoison.cli import main

main()
