"""Four eyes count people: an execution keeps the account that submitted it on behalf of its
actor, and a membership since when it holds its role (existing rows: since they were created).
Executions still waiting for votes get their submitter back from their ``created`` event
(written by the server: the submitting account's name)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0021_dlq_fault"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="execution",
            name="submitted_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="role_since",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        migrations.RunSQL(
            "UPDATE tenant_memberships SET role_since = created_at",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(
            """
            UPDATE executions e SET submitted_by_id = u.id
              FROM execution_events ev JOIN auth_user u ON u.username = ev.details->>'submitted_by'
             WHERE ev.execution_id = e.execution_id AND ev.event_type = 'created'
               AND e.status = 'pending_approval' AND u.id <> e.actor_id
            """,
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
