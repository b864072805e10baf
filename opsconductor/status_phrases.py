"""Reason phrases on daphne's status lines.

daphne sets a response's status through Twisted's ``setResponseCode(code)`` with no phrase
(ASGI carries none: a Django ``reason_phrase`` never reaches the server), and Twisted's
table lacks codes this product answers (422 for a reused idempotency key, 429 for a rate
limit): the status line read ``HTTP/1.1 422 Unknown Status``. The phrases of the standard
library's table fill the gaps, once, when the web process loads the application.
"""

from __future__ import annotations

from http import HTTPStatus

from twisted.web import http as twisted_http


def status_phrases_fill() -> None:
    """Give every standard status code Twisted does not know its phrase."""
    for status in HTTPStatus:
        twisted_http.RESPONSES.setdefault(status.value, status.phrase.encode("ascii"))
