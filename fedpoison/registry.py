"""Explicit, duplicate-refusing name registries (datasets, models, partitioners, rules, attacks).

:class:`Registry` files objects under names. :class:`ClassRegistry` files the configurable
classes (rules, pre-aggregators, attacks): its registration is the only place a class's name is
written (it sets the class's ``name``), and :meth:`ClassRegistry.build` is the one way a config
entry becomes an instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from hydra.utils import instantiate

T = TypeVar("T")
B = TypeVar("B")


class Registry(Generic[T]):
    """A name → object table filled by explicit ``@registry.register("name")`` calls.

    Registering a name twice raises instead of silently replacing the first entry, and a
    lookup of an unknown name lists the known ones.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that files ``obj`` under ``name``; refuses duplicates."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """The object filed under ``name``; ``KeyError`` naming the known entries otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise KeyError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


class ClassRegistry(Registry[type[B]]):
    """A registry of subclasses of ``base`` whose registration names them.

    ``@REGISTRY.register("krum")`` sets the class attribute ``name = "krum"``, so a class never
    spells its own name; a class that defines a different ``name`` itself is refused.
    """

    def __init__(self, kind: str, base: type) -> None:  # type[B] refuses abstract bases
        super().__init__(kind)
        self.base = base

    def register(self, name: str) -> Callable[[type[B]], type[B]]:
        """Decorator that files the class under ``name`` and sets its ``name`` to it."""
        add = super().register(name)

        def named(cls: type[B]) -> type[B]:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"{self.kind} {name!r}: {cls!r} is not a {self.base.__name__}")
            own = vars(cls).get("name")
            if own is not None and own != name:
                raise ValueError(
                    f"{self.kind} {name!r}: {cls.__name__} defines name={own!r}; "
                    "leave the name to the registration"
                )
            add(cls)
            cls.name = name  # type: ignore[attr-defined]
            return cls

        return named

    def build(self, spec: Any, key: str) -> B:
        """An instance of ``base`` from the config entry ``spec`` found at ``key``.

        ``spec`` is a registered name (``"nnm"``: built with its defaults), a mapping with a
        ``name`` and the constructor's parameters (``{name: bucketing, s: 2}``), or a
        ``_target_`` mapping (built by ``hydra.utils.instantiate``, nested ``_target_`` nodes
        included). Raises ``KeyError`` for an unknown name and ``TypeError`` naming ``key``
        when the result is not a ``base``.
        """
        if isinstance(spec, str):
            obj = self.get(spec)()
        elif isinstance(spec, Mapping) and "_target_" in spec:
            obj = instantiate(spec)
        elif isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
            params = {k: v for k, v in spec.items() if k != "name"}
            obj = self.get(spec["name"])(**params)
        else:
            raise ValueError(
                f"{key}: expected a {self.kind} name, a {{name: ..., <parameter>: ...}} mapping "
                f"or a _target_ mapping, got {spec!r}"
            )
        if not isinstance(obj, self.base):
            raise TypeError(f"{key} must build a {self.base.__name__}, got {type(obj).__name__}")
        return obj
