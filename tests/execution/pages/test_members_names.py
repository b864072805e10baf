"""Usernames follow Django's rules (letters, digits and @.+-_, at most 150 characters) at
every door that creates an account: the members page and service, the admin, the demo."""

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
