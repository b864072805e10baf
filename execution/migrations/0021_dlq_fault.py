"""A dead letter names the platform fault that put it there (docs/contract.md#truth).

Entries written before this release keep reading: their free-text reason becomes a fault.
``max_attempts_exceeded`` was written for two things: a lease the reaper found expired
(its last error says so) and a step that failed on every attempt (no platform fault: kept
as ``step_failed`` so the entry still says what happened); ``timeout`` becomes
``execution_timeout``.
"""

from django.db import migrations, models

FORWARD = """
UPDATE execution_dlq SET failure_reason = CASE
    WHEN failure_reason = 'timeout' THEN 'execution_timeout'
    WHEN failure_reason = 'lock_wait_exceeded' THEN 'lock_wait_exceeded'
    WHEN failure_reason = 'max_attempts_exceeded' AND last_error LIKE 'lease expired%' THEN 'worker_lost'
    WHEN failure_reason IN ('worker_lost', 'lease_timeout', 'database_unreachable', 'worker_crashed',
                            'execution_timeout', 'step_failed') THEN failure_reason
    ELSE 'step_failed'
END
"""

BACKWARD = """
UPDATE execution_dlq SET failure_reason = CASE
    WHEN failure_reason = 'execution_timeout' THEN 'timeout'
    WHEN failure_reason = 'lock_wait_exceeded' THEN 'lock_wait_exceeded'
    ELSE 'max_attempts_exceeded'
END
"""


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0020_runbooks"),
    ]

    operations = [
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.AlterField(
            model_name="deadletter",
            name="failure_reason",
            field=models.CharField(
                choices=[
                    ("worker_lost", "worker lost (its lease ran out: the process died or lost the database)"),
                    ("lease_timeout", "held past the policy's lease timeout (a live but stuck worker)"),
                    ("database_unreachable", "the database was unreachable during the attempt"),
                    ("worker_crashed", "the attempt crashed in the worker"),
                    ("execution_timeout", "the execution ran past its timeout"),
                    ("lock_wait_exceeded", "waited for an asset lock past the limit"),
                    ("step_failed", "a step failed (recorded by an earlier release)"),
                ],
                max_length=200,
            ),
        ),
        migrations.AddConstraint(
            model_name="deadletter",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "failure_reason__in",
                        [
                            "worker_lost",
                            "lease_timeout",
                            "database_unreachable",
                            "worker_crashed",
                            "execution_timeout",
                            "lock_wait_exceeded",
                            "step_failed",
                        ],
                    )
                ),
                name="dlq_fault_valid",
            ),
        ),
    ]
