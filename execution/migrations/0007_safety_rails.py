"""Safety rails (docs/security.md): the timeout policy stored on each execution, read-only
command rules, ``ssh`` as the default connection, and triggers that keep the plan snapshot
and the event trail as written.

- ``executions.plan_snapshot`` / ``plan_hash``: an UPDATE that changes either is refused.
- ``execution_events``: UPDATE is refused (except ``actor_id`` set to NULL: Django's
  ON DELETE SET NULL when a user is deleted); DELETE is refused unless the transaction has
  run ``SET LOCAL opsconductor.retention = 'on'`` (retention/pruning only).
"""

import django.db.models.deletion
from django.db import migrations, models


POLICY_FIELDS = (
    "step_timeout_seconds",
    "execution_timeout_seconds",
    "lease_timeout_seconds",
    "approval_timeout_seconds",
    "max_attempts",
)


def store_policies(apps, schema_editor):  # type: ignore[no-untyped-def]
    """Existing executions keep the policy in force now (the best record of submission time)."""
    policy_model = apps.get_model("execution", "TimeoutPolicy")
    execution_model = apps.get_model("execution", "Execution")
    for policy in policy_model.objects.all():
        values = {name: getattr(policy, name) for name in POLICY_FIELDS}
        execution_model.objects.filter(
            sla_class=policy.sla_class, action_class=policy.action_class, timeout_policy={}
        ).update(timeout_policy=values)


TRIGGERS = """
CREATE FUNCTION executions_plan_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.plan_snapshot IS DISTINCT FROM OLD.plan_snapshot OR NEW.plan_hash IS DISTINCT FROM OLD.plan_hash THEN
        RAISE EXCEPTION 'executions.plan_snapshot and plan_hash are immutable after insert (execution %)',
            OLD.execution_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER executions_plan_immutable BEFORE UPDATE OF plan_snapshot, plan_hash ON executions
    FOR EACH ROW EXECUTE FUNCTION executions_plan_immutable();

CREATE FUNCTION execution_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF current_setting('opsconductor.retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'execution_events is append-only: DELETE only by retention '
            '(SET LOCAL opsconductor.retention = ''on'')' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.actor_id IS NULL AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
        RETURN NEW;  -- ON DELETE SET NULL of the acting user
    END IF;
    RAISE EXCEPTION 'execution_events is append-only: rows are never updated (event %)', OLD.id
        USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER execution_events_append_only BEFORE UPDATE OR DELETE ON execution_events
    FOR EACH ROW EXECUTE FUNCTION execution_events_append_only();
"""

DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS execution_events_append_only ON execution_events;
DROP FUNCTION IF EXISTS execution_events_append_only();
DROP TRIGGER IF EXISTS executions_plan_immutable ON executions;
DROP FUNCTION IF EXISTS executions_plan_immutable();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('execution', '0006_secrets_and_outbound_rules'),
    ]

    operations = [
        migrations.AddField(
            model_name='execution',
            name='timeout_policy',
            field=models.JSONField(default=dict),
        ),
        migrations.RunPython(store_policies, migrations.RunPython.noop),
        # Rows inserted by raw SQL (benchmarks, bulk tools) get an empty policy, not an error.
        migrations.RunSQL(
            "ALTER TABLE executions ALTER COLUMN timeout_policy SET DEFAULT '{}'::jsonb",
            "ALTER TABLE executions ALTER COLUMN timeout_policy DROP DEFAULT",
        ),
        migrations.AlterField(
            model_name='asset',
            name='connection_type',
            field=models.CharField(choices=[('local', 'Local'), ('ssh', 'Ssh'), ('automation', 'Automation'), ('http', 'Http'), ('database', 'Database')], default='ssh', max_length=16),
        ),
        migrations.CreateModel(
            name='ReadOnlyCommandRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('pattern', models.CharField(help_text='RE2 regular expression, matched against the whole command', max_length=500)),
                ('description', models.CharField(blank=True, max_length=255)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('tenant', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='read_only_command_rules', to='execution.tenant')),
            ],
            options={
                'db_table': 'read_only_command_rules',
                'ordering': ['tenant_id', 'pattern'],
                'constraints': [models.UniqueConstraint(fields=('tenant', 'pattern'), name='read_only_rule_unique')],
            },
        ),
        migrations.RunSQL(TRIGGERS, DROP_TRIGGERS),
    ]
