"""Artifacts are capped at 10 KB per step (docs/contract.md#data-model): enforced by the database too."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("execution", "0002_initial")]
    operations = [
        migrations.RunSQL(
            sql=(
                "ALTER TABLE execution_steps ADD CONSTRAINT steps_artifacts_10kb "
                "CHECK (artifacts IS NULL OR octet_length(artifacts::text) <= 10240);"
            ),
            reverse_sql="ALTER TABLE execution_steps DROP CONSTRAINT steps_artifacts_10kb;",
        )
    ]
