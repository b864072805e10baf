"""``demo_seed``: the idempotent demo tenant of docs/contract.md#monitoring (users per role, tokens, local
assets,
read-only command rules)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from execution.enums import ConnectionType, Role
from execution.models import ApiToken, Asset, Membership, ReadOnlyCommandRule, Tenant
from execution.services.tokens import api_token_issue, token_hash
from execution.services.users import username_check

DEMO_USERS: list[tuple[str, str, str]] = [
    ("operator", "demo", Role.OPERATOR),
    ("deployer", "demo", Role.DEPLOYER),
    ("approver1", "demo", Role.APPROVER),
    ("approver2", "demo", Role.APPROVER),
    ("approver3", "demo", Role.APPROVER),
    ("viewer", "demo", Role.VIEWER),
    ("admin", "demo", Role.ADMIN),
    ("outsider", "other", Role.ADMIN),
]
# Each demo user's e-mail address: example.com is reserved (RFC 2606), so nothing sent to it
# is ever delivered; notifications (an approval request to the approvers) can be shown with
# a local SMTP sink (docs/notifications.md).
DEMO_EMAIL_DOMAIN = "example.com"
# Local-connection assets: their commands run on the worker host as LOCAL_RUNNER_USER.
DEMO_ASSETS = ["local-1", "local-2", "local-3"]
# The demo tenant's read-only command rules: the example plans declare these commands read.
DEMO_READ_ONLY_COMMANDS = [
    ("uptime", "load and uptime"),
    (r"df -h( \S+)?", "disk usage"),
    ("echo config ok", "the restart example's configuration check"),
]
# Request bodies for POST /api/v1/executions/ against the demo tenant and its local assets.
EXAMPLE_PLANS_DIR = Path(__file__).resolve().parents[2] / "docs" / "examples"


def demo_example_plans() -> list[Path]:
    """The example plans (``docs/examples/*.json``), sorted by name."""
    return sorted(EXAMPLE_PLANS_DIR.glob("*.json"))


@dataclass
class DemoSeed:
    tenants: list[str]
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    assets: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"tenants": self.tenants, "users": self.users, "assets": self.assets}


def demo_password_generate() -> str:
    return secrets.token_urlsafe(12)


def _remembered_path() -> Path:
    from opsconductor import embedded_pg

    return embedded_pg.state_dir() / "demo-password"


def demo_password_remembered() -> str | None:
    """The demo password last set (kept in the state directory), if any."""
    path = _remembered_path()
    return path.read_text().strip() or None if path.exists() else None


def _remember(password: str) -> None:
    path = _remembered_path()
    path.write_text(password)
    path.chmod(0o600)


def _tokens_path() -> Path:
    from opsconductor import embedded_pg

    return embedded_pg.state_dir() / "demo-tokens.json"


DEMO_TOKEN_NAME = "demo"  # noqa: S105 - the token's name, not a secret


def _demo_token(*, user: Any, tenant: Tenant, remembered: dict[str, str]) -> str:
    """The demo user's remembered key while it still works in their tenant, else a new one
    bound to that tenant (remembered; it replaces their earlier ``demo`` token there).

    Keys are stored hashed, so the only copy of a demo key is this file in the state
    directory (closed to other users, like the demo password beside it): ``serve``'s banner
    and ``demo --json`` print the same working token until someone rotates it.
    """
    key = remembered.get(user.get_username(), "")
    if key and ApiToken.objects.filter(key_hash=token_hash(key), user=user, tenant=tenant).exists():
        return key
    key = api_token_issue(user=user, tenant=tenant, name=DEMO_TOKEN_NAME, replace=True).key
    remembered[user.get_username()] = key
    return key


def _tokens_remembered() -> dict[str, str]:
    path = _tokens_path()
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _tokens_remember(tokens: dict[str, str]) -> None:
    path = _tokens_path()
    path.write_text(json.dumps(tokens, sort_keys=True))
    path.chmod(0o600)


def demo_password_choose(*, password: str | None, reset: bool) -> tuple[str, bool]:
    """(the demo password, whether existing demo users get it now).

    An explicit ``password`` or ``reset`` sets every demo user's password (and remembers it);
    otherwise existing users keep theirs and the remembered one is reported, so ``serve``'s
    banner and ``demo --json`` always agree.
    """
    if password:
        _remember(password)
        return password, True
    remembered = demo_password_remembered()
    if reset or remembered is None:
        fresh = demo_password_generate()
        _remember(fresh)
        return fresh, True
    return remembered, False


@transaction.atomic
def demo_seed(*, password: str | None = None, reset_passwords: bool = False) -> DemoSeed:
    """Create or refresh the demo tenants, users, memberships, tokens and assets.

    Safe to run any number of times: existing rows are reused. Passwords: see
    :func:`demo_password_choose` -- a plain re-run never changes a demo user's password.
    """
    password, set_existing = demo_password_choose(password=password, reset=reset_passwords)
    user_model = get_user_model()
    tenants = {
        slug: Tenant.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0]
        for slug in ("demo", "other")
    }
    seed = DemoSeed(tenants=sorted(tenants))
    tokens = _tokens_remembered()
    for username, tenant_slug, role in DEMO_USERS:
        username_check(username)  # the same rules as every other door that creates accounts
        user, created = user_model.objects.get_or_create(username=username)
        user.is_staff = role == Role.ADMIN
        if not user.email:  # an address an admin gave the account since is kept
            user.email = f"{username}@{DEMO_EMAIL_DOMAIN}"
        if created or set_existing or not user.has_usable_password():
            user.set_password(password)
        user.save()
        Membership.objects.update_or_create(tenant=tenants[tenant_slug], user=user, defaults={"role": role})
        seed.users[username] = {
            "tenant": tenant_slug,
            "role": str(role),
            "email": user.email,
            "password": password,
            "token": _demo_token(user=user, tenant=tenants[tenant_slug], remembered=tokens),
        }
    _tokens_remember(tokens)
    for hostname in DEMO_ASSETS:
        asset, _ = Asset.objects.update_or_create(
            tenant=tenants["demo"],
            hostname=hostname,
            defaults={
                "connection_type": ConnectionType.LOCAL,
                "address": "127.0.0.1",
                "tags": ["demo", "local"],
            },
        )
        seed.assets.append({"id": asset.pk, "hostname": asset.hostname})
    for pattern, description in DEMO_READ_ONLY_COMMANDS:
        ReadOnlyCommandRule.objects.update_or_create(
            tenant=tenants["demo"], pattern=pattern, defaults={"description": description}
        )
    from execution.runbooks.demo import runbooks_demo_seed

    runbooks_demo_seed(
        tenant=tenants["demo"],
        admin=user_model.objects.get(username="admin"),
        trigger_file=_trigger_path(),
    )
    return seed


def _trigger_path() -> Path:
    from opsconductor import embedded_pg

    return embedded_pg.state_dir() / "demo-trigger.json"
