"""API tokens become named, expiring and bound to one tenant (docs/api.md#tokens).

Existing tokens: a token whose user is a member of exactly one tenant is bound to that
tenant and keeps working there (the client keeps its key). A token whose user is in several
tenants, or in none, cannot be bound without guessing which tenant its client meant: it is
left unbound, and an unbound token is refused with "issue a new token" (a silent choice
would either cut a client off from the tenant it used or widen nothing, but quietly; an
operator would rather see the refusal and issue one token per tenant). Every existing
token is named ``legacy-<id>``. A superuser's token counts like anyone's.
"""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

NAME_EXISTING_TOKENS = "UPDATE api_tokens SET token_id = gen_random_uuid(), name = 'legacy-' || id"
# Last in the migration: the deferred foreign-key checks this UPDATE queues would make any
# later ALTER TABLE of the same transaction fail ("pending trigger events").
BIND_EXISTING_TOKENS = """
UPDATE api_tokens t SET tenant_id = single.tenant_id
FROM (
    SELECT user_id, min(tenant_id) AS tenant_id FROM tenant_memberships
    GROUP BY user_id HAVING count(*) = 1
) single
WHERE t.user_id = single.user_id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0016_lock_modes_and_waiters"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="token_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="tenant",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="api_tokens",
                to="execution.tenant",
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="name",
            field=models.CharField(default="", max_length=100),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="created_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="last_used_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="last_used_from",
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
        migrations.RunSQL(NAME_EXISTING_TOKENS, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="apitoken",
            name="token_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.UniqueConstraint(
                fields=("user", "tenant", "name"), name="api_tokens_unique_name"
            ),
        ),
        migrations.RunSQL(BIND_EXISTING_TOKENS, reverse_sql=migrations.RunSQL.noop),
    ]
