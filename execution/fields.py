"""A CharField stored in a PostgreSQL ENUM type created by migration 0001."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


class PgEnumField(models.CharField):
    """Text in Python, a real PostgreSQL enum type in the database.

    A value outside the choices is refused before it reaches PostgreSQL (which would abort
    the transaction with a DataError): a lookup with it raises ``ValidationError`` when the
    query is built, which the admin's filters turn into their "invalid filter" answer.
    """

    def __init__(self, *args: Any, enum_type: str, **kwargs: Any) -> None:
        self.enum_type = enum_type
        kwargs.setdefault("max_length", 32)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["enum_type"] = self.enum_type
        return name, path, args, kwargs

    def db_type(self, connection: Any) -> str:
        return self.enum_type

    def rel_db_type(self, connection: Any) -> str:
        return self.enum_type

    def cast_db_type(self, connection: Any) -> str:
        return self.enum_type

    @cached_property
    def enum_values(self) -> frozenset[str]:
        return frozenset(str(key) for key, _ in self.flatchoices)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or not self.choices or value in self.enum_values:
            return value
        raise ValidationError(
            "%(value)r is not a value of %(enum)s",
            code="invalid_choice",
            params={"value": value, "enum": self.enum_type},
        )
