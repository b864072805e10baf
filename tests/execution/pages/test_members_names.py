"""Usernames follow Django's rules (letters, digits and @.+-_, at most 150 characters) at
every door that creates an account: the members page and service, the admin, the demo; and
at the doors of ours (the members page and service, the demo, the OIDC backend) no name passes
for another one."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from execution.models import AuditLog
from execution.services.members import MemberChangeRefused, membership_add
from execution.services.users import UserRefused, user_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

BAD_NAMES = [
    pytest.param("bell\x07ringer", id="control-character"),
    pytest.param("line\r\nbreak", id="line-break"),
    pytest.param("<img src=x onerror=alert(1)>", id="markup"),
    pytest.param("two words", id="space"),
    pytest.param("a" * 151, id="151-characters"),
]


# Names Django's validator accepts that read as another (red team: "admin" with a Cyrillic a,
# U+0430, approving as if "admin"). Each is refused by our one account-making function.
LOOK_ALIKES = [
    pytest.param("\u0430dmin", id="cyrillic-a-in-latin"),
    pytest.param("\uff4f\uff50\uff45\uff52\uff41\uff54\uff4f\uff52", id="fullwidth"),
    pytest.param("ops\u2010team", id="unicode-hyphen"),
    pytest.param("Tenant-Admin", id="another-case-of-an-existing-name"),
]


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("username", BAD_NAMES)
def test_the_members_page_refuses_a_bad_username_and_creates_nobody(
    tenant: Any, tenant_admin: Any, username: str
) -> None:
    users_before = get_user_model().objects.count()
    response = _client(tenant_admin).post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "add", "username": username, "role": "viewer", "password": "long-enough-1"},
    )
    assert response.status_code == 400
    assert "Refused: username:" in response.content.decode()
    assert get_user_model().objects.count() == users_before
    assert not AuditLog.objects.filter(event_type="member_added").exists()


def test_a_name_of_exactly_150_characters_is_accepted(tenant: Any, tenant_admin: Any) -> None:
    name = "n" * 150
    membership_add(
        tenant=tenant, actor=tenant_admin, username=name, role="viewer", password="long-enough-1", door="test"
    )
    assert get_user_model().objects.filter(username=name).exists()


@pytest.mark.parametrize("username", BAD_NAMES)
def test_the_services_refuse_a_bad_username(tenant: Any, tenant_admin: Any, username: str) -> None:
    with pytest.raises(MemberChangeRefused, match=r"^username: "):
        membership_add(
            tenant=tenant,
            actor=tenant_admin,
            username=username,
            role="viewer",
            password="long-enough-1",
            door="test",
        )
    with pytest.raises(UserRefused) as refused:
        user_create(username=username, password="long-enough-1")
    assert refused.value.field == "username"
    assert not get_user_model().objects.filter(username=username).exists()


@pytest.mark.parametrize("username", BAD_NAMES)
def test_the_admin_user_form_refuses_a_bad_username(username: str) -> None:
    """Django's own user form applies the model field's validator (this door was never open;
    the test keeps it so)."""
    root = UserFactory(username="root-admin", is_staff=True, is_superuser=True)
    response = _client(root).post(
        "/admin/auth/user/add/",
        {"username": username, "password1": "Long-enough-pw-1", "password2": "Long-enough-pw-1"},
    )
    assert response.status_code == 200 and "errornote" in response.content.decode()
    assert not get_user_model().objects.filter(username=username).exists()


@pytest.mark.parametrize("username", BAD_NAMES)
def test_createsuperuser_refuses_a_bad_username(username: str) -> None:
    """``manage.py createsuperuser`` checks the name with the model field's validators (the
    only command that creates accounts; this door was never open, the test keeps it so)."""
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError):
        call_command("createsuperuser", "--noinput", "--username", username, "--email", "root@example.test")
    assert not get_user_model().objects.filter(username=username).exists()


def test_the_demo_seed_checks_its_user_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo creates accounts too: a name Django refuses stops the seed before any row."""
    from execution.services import demo

    monkeypatch.setattr(demo, "DEMO_USERS", [("bell\x07ringer", "demo", "viewer")])
    with pytest.raises(UserRefused) as refused:
        demo.demo_seed(password="long-enough-demo-1")
    assert refused.value.field == "username"
    assert not get_user_model().objects.filter(username="bell\x07ringer").exists()


@pytest.mark.parametrize("username", LOOK_ALIKES)
def test_a_name_that_passes_for_another_is_refused_at_the_page_and_the_service(
    tenant: Any, tenant_admin: Any, username: str
) -> None:
    UserFactory(username="tenant-admin")
    users_before = get_user_model().objects.count()
    response = _client(tenant_admin).post(
        f"/tenants/{tenant.slug}/members/",
        {"action": "add", "username": username, "role": "approver", "password": "long-enough-1"},
    )
    assert response.status_code == 400 and "Refused: username:" in response.content.decode()
    with pytest.raises(UserRefused) as refused:
        user_create(username=username, password="long-enough-1")
    assert refused.value.field == "username"
    assert get_user_model().objects.count() == users_before


def test_names_of_one_script_are_accepted() -> None:
    """Not ASCII only: a name in one script (accents included) is a name."""
    for name in ("jos\u00e9", "\u0438\u0432\u0430\u043d", "ops.team-2"):
        assert user_create(username=name, password="long-enough-1").username == name
