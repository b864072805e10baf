"""The parameter schema of a runbook (docs/runbooks.md#parameters) and the check of the
values a launch brings. Every problem names its path: ``parameters.properties.port.minimum``
for a schema, ``params.port`` for a value."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Any

import re2

from execution.plans import Problem

TYPES = ("string", "integer", "boolean")
PROPERTY_KEYS = {
    "type",
    "title",
    "description",
    "enum",
    "default",
    "pattern",
    "minimum",
    "maximum",
    "choices_from",
}
SELECTOR_KEYS = {"tag", "hostname"}
NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
MAX_PARAMETERS = 50
MAX_STRING = 4096


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _fits_type(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return _is_int(value)
    return isinstance(value, bool)


def _property_problems(path: str, spec: Any) -> list[Problem]:
    if not isinstance(spec, dict):
        return [Problem(path, "a parameter is an object with a type")]
    problems = [Problem(f"{path}.{key}", "unknown keyword") for key in sorted(set(spec) - PROPERTY_KEYS)]
    kind = spec.get("type")
    if kind not in TYPES:
        return [*problems, Problem(f"{path}.type", f"must be one of {list(TYPES)}")]
    if "enum" in spec:
        enum = spec["enum"]
        if not isinstance(enum, list) or not enum or not all(_fits_type(kind, v) for v in enum):
            problems.append(Problem(f"{path}.enum", f"a non-empty list of {kind} values"))
    if "pattern" in spec:
        if kind != "string" or not isinstance(spec["pattern"], str):
            problems.append(Problem(f"{path}.pattern", "a string parameter's RE2 expression"))
        else:
            try:
                re2.compile(spec["pattern"])
            except re2.error as exc:
                problems.append(Problem(f"{path}.pattern", f"not a valid RE2 expression: {exc}"))
    for bound in ("minimum", "maximum"):
        if bound in spec and (kind != "integer" or not _is_int(spec[bound])):
            problems.append(Problem(f"{path}.{bound}", "an integer parameter's integer bound"))
    if "choices_from" in spec:
        selector = spec["choices_from"]
        if (
            kind != "string"
            or not isinstance(selector, dict)
            or not selector
            or set(selector) - SELECTOR_KEYS
            or not all(isinstance(v, str) and v for v in selector.values())
        ):
            problems.append(
                Problem(
                    f"{path}.choices_from",
                    'a string parameter\'s inventory selector: {"tag": "web"} and/or {"hostname": "web-*"}',
                )
            )
    for key in ("title", "description"):
        if key in spec and not isinstance(spec[key], str):
            problems.append(Problem(f"{path}.{key}", "must be a string"))
    if not problems and "default" in spec:
        problems.extend(
            Problem(f"{path}.default", p.message)
            for p in _value_problems("", spec, spec["default"], choices=None)
        )
    return problems


def schema_check(schema: Any) -> list[Problem]:
    """Problems of a parameter schema (an object schema with ``properties`` and ``required``)."""
    path = "parameters"
    if schema in (None, {}):
        return []
    if not isinstance(schema, dict):
        return [Problem(path, "a JSON Schema object is required")]
    problems = [
        Problem(f"{path}.{key}", "unknown keyword")
        for key in sorted(set(schema) - {"type", "properties", "required", "title", "description"})
    ]
    if schema.get("type", "object") != "object":
        problems.append(Problem(f"{path}.type", 'must be "object"'))
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        return [*problems, Problem(f"{path}.properties", "an object of parameters is required")]
    if len(properties) > MAX_PARAMETERS:
        problems.append(Problem(f"{path}.properties", f"at most {MAX_PARAMETERS} parameters"))
    for name, spec in properties.items():
        if not NAME.match(str(name)):
            problems.append(
                Problem(f"{path}.properties.{name}", "a name of [a-z0-9_], starting with a letter")
            )
            continue
        problems.extend(_property_problems(f"{path}.properties.{name}", spec))
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        problems.append(Problem(f"{path}.required", "a list of parameter names"))
    else:
        problems.extend(
            Problem(f"{path}.required", f"{r!r} is not a parameter") for r in required if r not in properties
        )
    return problems


def properties_of(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict((schema or {}).get("properties") or {})


def _value_problems(
    path: str, spec: dict[str, Any], value: Any, *, choices: list[str] | None
) -> list[Problem]:
    kind = spec["type"]
    if not _fits_type(kind, value):
        return [Problem(path, f"must be {'an' if kind == 'integer' else 'a'} {kind}")]
    if "enum" in spec and value not in spec["enum"]:
        return [Problem(path, f"must be one of {spec['enum']}")]
    if kind == "string":
        if len(value) > MAX_STRING:
            return [Problem(path, f"at most {MAX_STRING} characters")]
        if "\x00" in value:
            return [Problem(path, "NUL characters are not allowed")]
        if "pattern" in spec and not re2.search(spec["pattern"], value):
            return [Problem(path, f"must match {spec['pattern']!r}")]
        if choices is not None and value not in choices:
            return [Problem(path, f"must be one of the inventory's hosts selected by {spec['choices_from']}")]
    if kind == "integer":
        if "minimum" in spec and value < spec["minimum"]:
            return [Problem(path, f"must be >= {spec['minimum']}")]
        if "maximum" in spec and value > spec["maximum"]:
            return [Problem(path, f"must be <= {spec['maximum']}")]
    return []


def choices_for(tenant: Any, selector: dict[str, str]) -> list[str]:
    """The hostnames of ``tenant``'s inventory a ``choices_from`` selector picks, sorted.
    The built-in inventory (the assets table) is read; docs/runbooks.md says why."""
    from execution.models import Asset

    assets = Asset.objects.filter(tenant=tenant)
    if "tag" in selector:
        assets = assets.filter(tags__contains=[selector["tag"]])
    names = assets.order_by("hostname").values_list("hostname", flat=True)
    pattern = selector.get("hostname")
    return [n for n in names if pattern is None or fnmatchcase(n, pattern)]


def params_check(schema: dict[str, Any], params: Any, *, tenant: Any) -> dict[str, Any]:
    """The values of a launch with defaults filled in; raises PlanInvalid naming ``params.X``."""
    from execution.plans import PlanInvalid

    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise PlanInvalid([Problem("params", "an object of parameter values is required")])
    properties = properties_of(schema)
    problems = [Problem(f"params.{name}", "no such parameter") for name in params if name not in properties]
    values: dict[str, Any] = {}
    required = set((schema or {}).get("required") or [])
    for name, spec in properties.items():
        path = f"params.{name}"
        if name in params and params[name] is not None:
            value = params[name]
        elif "default" in spec:
            value = spec["default"]
        elif name in required:
            problems.append(Problem(path, "is required"))
            continue
        else:
            continue
        choices = choices_for(tenant, spec["choices_from"]) if "choices_from" in spec else None
        found = _value_problems(path, spec, value, choices=choices)
        problems.extend(found)
        if not found:
            values[name] = value
    if problems:
        raise PlanInvalid(problems)
    return values


def sample_values(schema: dict[str, Any]) -> dict[str, Any]:
    """A value for every parameter (its default, first choice or bound), for checking a
    template's shape when it is saved."""
    out: dict[str, Any] = {}
    for name, spec in properties_of(schema).items():
        if "default" in spec:
            out[name] = spec["default"]
        elif spec.get("enum"):
            out[name] = spec["enum"][0]
        elif spec["type"] == "integer":
            out[name] = spec.get("minimum", spec.get("maximum", 0))
        elif spec["type"] == "boolean":
            out[name] = False
        else:
            out[name] = "sample"
    return out


def params_from_text(schema: dict[str, Any], raw: dict[str, str]) -> dict[str, Any]:
    """Values typed as text (a form, ``-p name=value``) in the schema's types; a text that is
    not of its type is kept as text, so :func:`params_check` names it. An empty text is no value."""
    properties = properties_of(schema)
    out: dict[str, Any] = {}
    for name, text in raw.items():
        kind = properties.get(name, {}).get("type", "string")
        if kind == "string":
            out[name] = text
        elif text == "":
            continue
        elif kind == "integer":
            try:
                out[name] = int(text)
            except ValueError:
                out[name] = text
        else:
            lowered = text.strip().lower()
            out[name] = {"true": True, "on": True, "false": False, "off": False}.get(lowered, text)
    return out
