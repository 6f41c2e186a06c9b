"""How ClientApps are executed: ``inline`` (in-process), ``ray`` (actors), ``flower``
(Flower's engine)."""
