"""The four PostgreSQL ENUM types of docs/contract.md#data-model, created before any table uses them."""

from django.db import migrations

ENUMS = {
    "execution_status": [
        "pending_approval", "approved", "rejected", "queued", "running",
        "completed", "failed", "cancelled", "timeout", "partial",
    ],
    "execution_mode": ["immediate", "background"],
    "sla_class": ["fast", "medium", "long"],
    "approval_state": ["pending", "approved", "rejected", "expired"],
}


def _create(name, values):
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"CREATE TYPE {name} AS ENUM ({quoted});"


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.RunSQL(sql=_create(name, values), reverse_sql=f"DROP TYPE {name};")
        for name, values in ENUMS.items()
    ]
