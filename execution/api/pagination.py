"""Limit/offset pagination that refuses a malformed ``limit`` or ``offset`` with a 400.

DRF's LimitOffsetPagination silently falls back to the defaults on ``?offset=abc``; an
operator's script with a typo would page through the wrong rows without knowing.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

PAGE_PARAMETERS = [
    OpenApiParameter("limit", int, description="page size"),
    OpenApiParameter("offset", int, description="rows to skip"),
]


class StrictLimitOffsetPagination(LimitOffsetPagination):
    def _checked(self, request: Request, name: str) -> None:
        values = request.query_params.getlist(name)
        if len(values) > 1 or any(not v.isdigit() for v in values):
            message = "a single non-negative integer"
            raise ValidationError(
                {"detail": f"{name}: {message}", "errors": [{"path": name, "message": message}]}
            )

    def get_limit(self, request: Request) -> int | None:
        self._checked(request, self.limit_query_param)
        return super().get_limit(request)

    def get_offset(self, request: Request) -> int:
        self._checked(request, self.offset_query_param)
        return super().get_offset(request)
