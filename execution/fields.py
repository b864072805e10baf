"""A CharField stored in a PostgreSQL ENUM type created by migration 0001."""

from __future__ import annotations

from typing import Any

from django.db import models


class PgEnumField(models.CharField):
    """Text in Python, a real PostgreSQL enum type in the database."""

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
