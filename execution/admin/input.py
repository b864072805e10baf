"""What the admin accepts from a request: bad input is the client's error, never a 500.

Django's admin turns most wacky changelist parameters into its own "invalid filter" answer
(a redirect to ``?e=1``), but not two: a posted action naming a row by something that is no
primary key of the model (``_selected_action=abc``: the queryset filter raises), and a date
hierarchy year beyond ``datetime``'s range (``OverflowError``). Every admin of ours derives
from :class:`CheckedModelAdmin`, which answers the first with a 400 and gives the second to
the changelist's own handling. Enum filters outside the enum are refused by ``PgEnumField``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest


class CheckedChangeList(ChangeList):
    def get_filters(self, request: HttpRequest) -> Any:
        try:
            return super().get_filters(request)
        except OverflowError as error:  # ?created_at__year=99999999999999999999
            raise IncorrectLookupParameters(error) from error


def selection_refusal(model: Any, request: HttpRequest) -> HttpResponse | None:
    """A 400 when a posted row key is not a primary key value of ``model``, else None."""
    key = model._meta.pk
    for raw in request.POST.getlist(ACTION_CHECKBOX_NAME):
        try:
            key.get_prep_value(key.to_python(raw))
        except (ValidationError, ValueError, TypeError):
            return HttpResponseBadRequest(
                f"{ACTION_CHECKBOX_NAME}: {raw!r} is no {model._meta.verbose_name} id",
                content_type="text/plain; charset=utf-8",
            )
    return None


class CheckedModelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CheckedChangeList

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        return selection_refusal(self.model, request) or super().response_action(request, queryset)
