"""The fair claim: the queue item carries its execution's tenant and environment, with an
index per (tenant, environment) in claim order that leaves parked items out (docs/engine.md
"The fair claim"); existing rows are filled from their executions."""

import django.db.models.deletion
from django.db import migrations, models

FILL = """
UPDATE execution_queue q SET tenant_id = e.tenant_id, environment = e.environment
FROM executions e WHERE e.execution_id = q.execution_id;
"""


class Migration(migrations.Migration):
    dependencies = [("execution", "0017_bound_named_api_tokens")]

    operations = [
        migrations.AddField(
            model_name="queueitem",
            name="environment",
            field=models.CharField(
                choices=[("dev", "Dev"), ("staging", "Staging"), ("prod", "Prod")], max_length=16, null=True
            ),
        ),
        migrations.AddField(
            model_name="queueitem",
            name="tenant",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="execution.tenant",
            ),
        ),
        migrations.RunSQL(FILL, reverse_sql=migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="queueitem",
            name="environment",
            field=models.CharField(choices=[("dev", "Dev"), ("staging", "Staging"), ("prod", "Prod")], max_length=16),
        ),
        migrations.AlterField(
            model_name="queueitem",
            name="tenant",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to="execution.tenant"
            ),
        ),
        migrations.AddIndex(
            model_name="queueitem",
            index=models.Index(
                condition=models.Q(("status", "pending"))
                & (
                    models.Q(("available_at__isnull", True))
                    | models.Q(("available_at__lt", models.Value("infinity")))
                ),
                fields=["tenant", "environment", "priority", "enqueued_at", "id"],
                name="queue_claim_fair",
            ),
        ),
    ]
