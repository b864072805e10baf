"""daphne's HTTP requests leave form parsing to Django.

Twisted's ``Request`` parses the body of every POST that has a ``Content-Type`` into
``request.args`` (URL-encoded and multipart forms) and, to tell which, parses that header
with the standard library's ``email`` package: a fifth of daphne's event-loop CPU per REST
submission (``py-spy``, docs/engine.md "Submission cost"), and for a form or an upload a
second copy of its fields. daphne never reads ``request.args``: it hands the application
the raw body, which Django parses itself. Twisted's own switch for this,
``parsePOSTFormSubmission=False``, is given to every request daphne makes, once, when the
web process loads the application.
"""

from __future__ import annotations

from typing import Any

from daphne import http_protocol


class FormlessWebRequest(http_protocol.WebRequest):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, parsePOSTFormSubmission=False, **kwargs)


def daphne_form_parsing_off() -> None:
    """daphne's protocol factory looks its request class up at each connection: ours."""
    http_protocol.WebRequest = FormlessWebRequest  # type: ignore[misc]
