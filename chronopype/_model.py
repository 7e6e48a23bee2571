"""pydantic-style helpers for the core's frozen dataclass configs (chronopype 0.8.3's configs
were pydantic models, and code written for them calls these)."""

from __future__ import annotations

import dataclasses
from typing import Any, Self

__all__ = ["ModelStyle"]


class ModelStyle:
    """``model_copy``, ``model_dump`` and ``model_validate`` for a frozen dataclass.

    Copies and validated dicts go through the constructor, so they are validated like any
    other instance (unlike pydantic's ``model_copy``, which skips validation).
    """

    __slots__ = ()

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with the fields in ``update`` replaced. ``deep`` is accepted for pydantic
        compatibility: the fields are immutable, so a shallow copy is already independent."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(_any(self))}
        return type(self)(**{**fields, **(update or {})})

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict; nested configs become dicts too."""
        return {
            f.name: _dump(getattr(self, f.name)) for f in dataclasses.fields(_any(self))
        }

    @classmethod
    def model_validate(cls, obj: object) -> Self:
        """An instance from a dict of fields, or ``obj`` itself if it already is one."""
        if isinstance(obj, cls):
            return obj
        if not isinstance(obj, dict):
            raise TypeError(f"{cls.__name__}.model_validate takes a dict, got {obj!r}")
        return cls(**cls._coerce(dict(obj)))

    @classmethod
    def _coerce(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Turn dumped field values (enum names, nested dicts) back into field types."""
        return values


def _any(instance: object) -> Any:
    return instance


def _dump(value: object) -> object:
    return value.model_dump() if isinstance(value, ModelStyle) else value
