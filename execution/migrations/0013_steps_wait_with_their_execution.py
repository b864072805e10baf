"""A step of an execution waiting for its approval is ``pending_approval`` (docs/contract.md#truth).
Rows written before: the waiting executions' steps move from ``queued``; the steps of
executions that ended before they ran (rejected, cancelled) are already ``cancelled`` or stay
as they were (the pages show them "not run"). The result column no longer carries a copy of
the steps (the API gives them once); old copies are left alone, nothing reads them."""

from django.db import migrations

FORWARD = """
UPDATE execution_steps s SET status = 'pending_approval', updated_at = now()
FROM executions e
WHERE e.execution_id = s.execution_id AND e.status = 'pending_approval' AND s.status = 'queued'
"""
BACKWARD = """
UPDATE execution_steps s SET status = 'queued', updated_at = now()
FROM executions e
WHERE e.execution_id = s.execution_id AND e.status = 'pending_approval' AND s.status = 'pending_approval'
"""


class Migration(migrations.Migration):
    dependencies = [("execution", "0012_audit_chain")]

    operations = [migrations.RunSQL(FORWARD, reverse_sql=BACKWARD)]
