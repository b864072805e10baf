"""Creating user accounts: every door that creates one (the members page and service, the
demo seed, later the OIDC backend) goes through :func:`user_create`, so every account has a
name Django's own rules accept: at most 150 letters, digits and ``@.+-_`` (no control
characters, no markup), and no name that passes for another: compatibility forms (fullwidth
letters), scripts mixed with look-alike characters (a Cyrillic a, U+0430, in ``admin``), or an
existing name in another case. An approver reads a name to decide who asked; such a name must not
read as ``admin``. The admin registers no user form: accounts are made here only.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from confusable_homoglyphs import confusables  # type: ignore[import-untyped]
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from execution.errors import DomainError

USERNAME_MAX = 150
PASSWORD_MIN = 8
_validate_username = UnicodeUsernameValidator()


class UserRefused(DomainError):
    """The account cannot be created as asked; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def username_check(username: str) -> None:
    """Raise :class:`UserRefused` unless ``username`` is a name Django's rules accept."""
    if not username:
        raise UserRefused("username", "a username is required")
    if len(username) > USERNAME_MAX:
        raise UserRefused("username", f"at most {USERNAME_MAX} characters ({len(username)} given)")
    try:
        _validate_username(username)
    except ValidationError:
        raise UserRefused(
            "username", "letters, digits and @ . + - _ only (no spaces, control characters or markup)"
        ) from None
    if unicodedata.normalize("NFKC", username) != username:
        raise UserRefused("username", "compatibility characters (such as fullwidth letters) are not allowed")
    if confusables.is_dangerous(username):
        raise UserRefused("username", "mixes scripts with look-alike characters (it passes for another name)")


def user_create(*, username: str, password: str | None, email: str = "") -> Any:
    """A new active account with a checked name and a password of at least 8 characters;
    ``None``: no usable password (an account that signs in at an identity provider)."""
    username_check(username)
    if password is not None and len(password) < PASSWORD_MIN:
        raise UserRefused("password", f"at least {PASSWORD_MIN} characters")
    users = get_user_model().objects
    existing = users.filter(username__iexact=username).values_list("username", flat=True).first()
    if existing is not None:
        case = "" if existing == username else " (in another case)"
        raise UserRefused("username", f"{existing!r} exists already{case}")
    return users.create_user(username=username, password=password, email=email)
