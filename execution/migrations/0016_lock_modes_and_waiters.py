"""Asset locks that share and wake: lock modes, every holder on the lock row, a line of
waiters per asset (docs/engine.md "Locks"). A lock active now keeps its one holder."""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('execution', '0015_oidc_identities'),
    ]

    operations = [
        migrations.CreateModel(
            name='ExecutionLockWaiter',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('asset_id', models.CharField(max_length=255)),
                ('mode', models.CharField(choices=[('shared', 'Shared'), ('exclusive', 'Exclusive')], max_length=10)),
                ('priority', models.PositiveSmallIntegerField(default=5)),
                ('since', models.DateTimeField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'db_table': 'execution_lock_waiters',
            },
        ),
        migrations.AddField(
            model_name='executionlock',
            name='holders',
            field=django.contrib.postgres.fields.ArrayField(base_field=models.UUIDField(), blank=True, default=list, size=None),
        ),
        migrations.AddField(
            model_name='executionlock',
            name='mode',
            field=models.CharField(choices=[('shared', 'Shared'), ('exclusive', 'Exclusive')], default='exclusive', max_length=10),
        ),
        migrations.AddField(
            model_name='executionlock',
            name='version',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddConstraint(
            model_name='executionlock',
            constraint=models.CheckConstraint(condition=models.Q(('mode__in', ['shared', 'exclusive'])), name='locks_mode_valid'),
        ),
        migrations.AddField(
            model_name='executionlockwaiter',
            name='execution',
            field=models.ForeignKey(db_column='execution_id', on_delete=django.db.models.deletion.CASCADE, related_name='lock_waits', to='execution.execution', to_field='execution_id'),
        ),
        migrations.AddField(
            model_name='executionlockwaiter',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='execution.tenant'),
        ),
        migrations.AddIndex(
            model_name='executionlockwaiter',
            index=models.Index(fields=['tenant', 'asset_id', 'priority', 'since', 'id'], name='lock_waiters_line'),
        ),
        migrations.AddConstraint(
            model_name='executionlockwaiter',
            constraint=models.UniqueConstraint(fields=('tenant', 'asset_id', 'execution'), name='lock_waiters_unique_asset_execution'),
        ),
        migrations.AddConstraint(
            model_name='executionlockwaiter',
            constraint=models.CheckConstraint(condition=models.Q(('mode__in', ['shared', 'exclusive'])), name='lock_waiters_mode_valid'),
        ),
        migrations.RunSQL(
            "UPDATE execution_locks SET holders = ARRAY[execution_id] "
            "WHERE is_active AND execution_id IS NOT NULL",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
