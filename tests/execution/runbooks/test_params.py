"""Parameter schemas and values (docs/runbooks.md#parameters): every problem names its path."""

from __future__ import annotations

from typing import Any

import pytest

from execution.plans import PlanInvalid
from execution.runbooks.params import params_check, params_from_text, schema_check
from execution.runbooks.render import render, template_problems
from tests.execution.runbooks.conftest import HEALTH_PARAMETERS


def _paths(problems: list[Any]) -> list[str]:
    return [p.path for p in problems]


def test_a_good_schema_has_no_problem() -> None:
    assert schema_check(HEALTH_PARAMETERS) == []


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"type": "float"}, "parameters.properties.p.type"),
        ({"type": "string", "pattern": "(a)\\1"}, "parameters.properties.p.pattern"),  # no RE2
        ({"type": "integer", "pattern": "x"}, "parameters.properties.p.pattern"),
        ({"type": "string", "minimum": 1}, "parameters.properties.p.minimum"),
        ({"type": "integer", "enum": ["a"]}, "parameters.properties.p.enum"),
        ({"type": "integer", "minimum": 3, "default": 1}, "parameters.properties.p.default"),
        ({"type": "string", "choices_from": {"zone": "x"}}, "parameters.properties.p.choices_from"),
        ({"type": "string", "oneOf": []}, "parameters.properties.p.oneOf"),
    ],
)
def test_a_bad_schema_names_the_keyword(spec: dict[str, Any], path: str) -> None:
    assert path in _paths(schema_check({"type": "object", "properties": {"p": spec}}))


def test_required_names_only_parameters() -> None:
    problems = schema_check({"properties": {"a": {"type": "string"}}, "required": ["b"]})
    assert _paths(problems) == ["parameters.required"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({}, "params.host"),  # required
        ({"host": "db-1"}, "params.host"),  # not a web host
        ({"host": "web-1", "path": "health"}, "params.path"),  # pattern
        ({"host": "web-1", "tries": 9}, "params.tries"),  # maximum
        ({"host": "web-1", "tries": "2"}, "params.tries"),  # type
        ({"host": "web-1", "verbose": 1}, "params.verbose"),
        ({"host": "web-1", "mode": "slow"}, "params.mode"),  # enum
        ({"host": "web-1", "color": "red"}, "params.color"),  # unknown
    ],
)
def test_a_bad_value_names_the_parameter(
    tenant: Any, web_hosts: Any, params: dict[str, Any], path: str
) -> None:
    with pytest.raises(PlanInvalid) as invalid:
        params_check(HEALTH_PARAMETERS, params, tenant=tenant)
    assert _paths(invalid.value.problems) == [path]


@pytest.mark.django_db
def test_defaults_fill_in_and_choices_come_from_the_inventory(tenant: Any, web_hosts: Any) -> None:
    values = params_check(HEALTH_PARAMETERS, {"host": "web-2"}, tenant=tenant)
    assert values == {"host": "web-2", "path": "/health", "tries": 1, "verbose": False, "mode": "quick"}


def test_text_values_take_the_schema_types() -> None:
    typed = params_from_text(
        HEALTH_PARAMETERS, {"tries": "3", "verbose": "true", "host": "web-1", "path": ""}
    )
    assert typed == {"tries": 3, "verbose": True, "host": "web-1", "path": ""}
    assert params_from_text(HEALTH_PARAMETERS, {"tries": "x"}) == {"tries": "x"}  # named by the check


def test_substitution_is_inside_strings_only_and_walks_any_field() -> None:
    template = {
        "name": "{{ params.a }}-{{params.b}}",
        "steps": [
            {
                "targets": [{"hostname": "{{ params.a }}"}, {"tag": "x"}],  # a fleet step's field
                "timeout_seconds": 5,
                "{{ params.a }}": "keys are not rendered",
                "flag": True,
            }
        ],
    }
    out = render(template, {"a": "web-1", "b": 7})
    assert out == {
        "name": "web-1-7",
        "steps": [
            {
                "targets": [{"hostname": "web-1"}, {"tag": "x"}],
                "timeout_seconds": 5,
                "{{ params.a }}": "keys are not rendered",
                "flag": True,
            }
        ],
    }
    assert render("{{ params.a }}", {"a": "{{ params.b }}", "b": "no"}) == "{{ params.b }}"  # once


def test_a_template_naming_no_parameter_or_using_logic_is_refused() -> None:
    problems = template_problems({"name": "{{ params.nope }}", "x": ["{{ params.a | upper }}"]}, {"a"})
    assert _paths(problems) == ["plan.name", "plan.x[0]"]
