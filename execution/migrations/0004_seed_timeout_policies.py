"""Seeds the nine timeout policies of docs/contract.md#data-model (step / execution / lease / approval seconds, attempts)."""

from django.db import migrations

POLICIES = [
    ("fast", "read", 5, 10, 15, 300, 3),
    ("fast", "modify", 8, 15, 20, 600, 3),
    ("fast", "deploy", 10, 20, 30, 900, 3),
    ("medium", "read", 15, 30, 45, 600, 5),
    ("medium", "modify", 20, 45, 60, 900, 5),
    ("medium", "deploy", 30, 60, 90, 1800, 5),
    ("long", "read", 60, 300, 360, 1800, 3),
    ("long", "modify", 120, 600, 720, 3600, 3),
    ("long", "deploy", 300, 1800, 2160, 7200, 3),
]


def seed(apps, schema_editor):
    TimeoutPolicy = apps.get_model("execution", "TimeoutPolicy")
    for sla, action, step, execution, lease, approval, attempts in POLICIES:
        TimeoutPolicy.objects.update_or_create(
            sla_class=sla,
            action_class=action,
            defaults={
                "step_timeout_seconds": step,
                "execution_timeout_seconds": execution,
                "lease_timeout_seconds": lease,
                "approval_timeout_seconds": approval,
                "max_attempts": attempts,
                "description": f"default policy for {sla} {action} plans",
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("execution", "TimeoutPolicy").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("execution", "0003_artifacts_check")]
    operations = [migrations.RunPython(seed, unseed)]
