"""``fedpoison-report``: tables, plots and a missing-run list for a study's run directories.

Reads ``results.json`` files only, and a killed run's ``rounds.jsonl`` journal beside it (NumPy,
SciPy, matplotlib and the standard library; no torch or Flower), so it runs anywhere the
results were copied to.
"""

from fedpoison.report.cli import main

__all__ = ["main"]
