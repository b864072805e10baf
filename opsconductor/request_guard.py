"""The request guard of docs/contract.md#hostile-input: refuses hostile input with a 400 that
names the field, before any parser, serializer or query sees it.

Refused, in the path, the query string, form fields and JSON bodies (keys and values):
JSON nested deeper than ``MAX_JSON_DEPTH`` (found by a scan of the raw text, never by a
recursive parser), NUL characters and lone surrogates (PostgreSQL cannot store the first, no
encoder can write the second), numbers outside what the database can hold (NaN, infinities,
integers past 64 bits), bodies that are not UTF-8, and numeric query parameters (``limit``,
``offset``, ``after``, ``priority``...) that are not small non-negative integers. The answer
has the API's error shape: ``{"detail": "<path>: <problem>", "errors": [{"path", "message"}]}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

MAX_JSON_DEPTH = 32
INT64_MAX = 2**63 - 1
# Numeric query parameters and their largest accepted value.
NUMERIC_QUERY_PARAMS: dict[str, int] = {
    "limit": 1000,
    "offset": 2**31 - 1,
    "after": INT64_MAX,
    "priority": 1000,
    "page": 2**31 - 1,
    "page_size": 1000,
    "step_index": 10_000,
}
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')
_BAD_CHARACTER = re.compile(r"[\x00\ud800-\udfff]")


class Refused(Exception):
    def __init__(self, path: str, message: str, status: int = 400) -> None:
        super().__init__(f"{path}: {message}")
        self.path, self.message, self.status = path, message, status


def refusal_response(path: str, message: str, status: int = 400) -> JsonResponse:
    return JsonResponse(
        {"detail": f"{path}: {message}", "errors": [{"path": path, "message": message}]}, status=status
    )


def _join(prefix: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _character_problem(text: str) -> str:
    found = _BAD_CHARACTER.search(text)
    if found is None:
        return ""
    return "NUL characters are not allowed" if found.group() == "\x00" else "lone surrogates are not allowed"


def json_depth_problem(text: str, limit: int = MAX_JSON_DEPTH) -> str | None:
    """The path of the first value nested deeper than ``limit``, or None. A flat scan over
    string and bracket tokens: no recursion, whatever the depth."""
    stack: list[list[Any]] = []  # [opening bracket, current key or index]
    last_string = ""
    for match in _TOKEN.finditer(text):
        lexeme = match.group()
        if lexeme[0] == '"':
            last_string = lexeme
            continue
        if lexeme == ":" and stack and stack[-1][0] == "{":
            try:
                stack[-1][1] = json.loads(last_string)
            except ValueError:
                stack[-1][1] = last_string.strip('"')
        elif lexeme == "," and stack and stack[-1][0] == "[":
            stack[-1][1] += 1
        elif lexeme in "[{":
            if len(stack) >= limit:
                path = ""
                for opening, key in stack:
                    if opening == "[" or key is not None:
                        path = _join(path, key)
                return path or "body"
            stack.append([lexeme, 0 if lexeme == "[" else None])
        elif lexeme in "]}" and stack:
            stack.pop()
        last_string = ""
    return None


def _reject_constant(name: str) -> Any:
    raise Refused("body", f"{name} is not a number JSON may carry")


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (path, key or leaf) of a parsed JSON document, iteratively."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, item in node.items():
                child = _join(path, key)
                yield child, key
                stack.append((child, item))
        elif isinstance(node, list):
            stack.extend((_join(path, index), item) for index, item in enumerate(node))
        else:
            yield path or "body", node


def check_json_body(raw: bytes) -> None:
    """Raise Refused for a JSON body this service will not take."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("body", "not valid UTF-8") from None
    deep = json_depth_problem(text)
    if deep is not None:
        raise Refused(deep, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        document = json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return  # malformed JSON: the parser answers 400 with its own message
    for path, leaf in _walk(document):
        if isinstance(leaf, str):
            problem = _character_problem(leaf)
            if problem:
                raise Refused(path, problem)
        elif isinstance(leaf, int) and not isinstance(leaf, bool) and abs(leaf) > INT64_MAX:
            raise Refused(path, "integer out of range (64 bits)")
        elif isinstance(leaf, float) and leaf in (float("inf"), float("-inf")):
            raise Refused(path, "number out of range")


def check_query(request: HttpRequest) -> None:
    for key, values in request.GET.lists():
        for item in (key, *values):
            problem = _character_problem(item)
            if problem:
                raise Refused(key, problem)
        bound = NUMERIC_QUERY_PARAMS.get(key)
        if bound is None:
            continue
        for item in values:
            if item == "":
                continue
            if not item.isascii() or not item.isdigit() or len(item) > 19 or int(item) > bound:
                raise Refused(key, f"must be an integer between 0 and {bound}")


def check_form(request: HttpRequest) -> None:
    for key, values in request.POST.lists():
        for item in (key, *values):
            problem = _character_problem(item)
            if problem:
                raise Refused(key, problem)


class RequestGuardMiddleware:
    """First thing after the security headers: nothing hostile reaches a view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            self._check(request)
        except Refused as refused:
            return refusal_response(refused.path, refused.message, refused.status)
        except RequestDataTooBig:
            return refusal_response("body", "request body too large", 413)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        problem = _character_problem(request.path)
        if problem:
            raise Refused("path", problem)
        check_query(request)
        if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
            return
        content_type = request.content_type or ""
        if "json" in content_type:
            check_json_body(request.body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            check_form(request)
