"""A dead letter may name a target the step could not reach (docs/contract.md#truth): a
fault of the platform, retried by the queue's attempts, then dead-lettered naming it."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('execution', '0025_runbook_triggers'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='deadletter',
            name='dlq_fault_valid',
        ),
        migrations.AlterField(
            model_name='deadletter',
            name='failure_reason',
            field=models.CharField(choices=[('worker_lost', 'worker lost (its lease ran out: the process died or lost the database)'), ('lease_timeout', "held past the policy's lease timeout (a live but stuck worker)"), ('database_unreachable', 'the database was unreachable during the attempt'), ('worker_crashed', 'the attempt crashed in the worker'), ('execution_timeout', 'the execution ran past its timeout'), ('lock_wait_exceeded', 'waited for an asset lock past the limit'), ('target_unreachable', "a step's target could not be reached (nothing was sent to it)"), ('step_failed', 'a step failed (recorded by an earlier release)')], max_length=200),
        ),
        migrations.AddConstraint(
            model_name='deadletter',
            constraint=models.CheckConstraint(condition=models.Q(('failure_reason__in', ['worker_lost', 'lease_timeout', 'database_unreachable', 'worker_crashed', 'execution_timeout', 'lock_wait_exceeded', 'target_unreachable', 'step_failed'])), name='dlq_fault_valid'),
        ),
    ]
