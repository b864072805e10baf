# An approval request's e-mail is one delivery per approver: a recipient column, and the
# exactly-once guard becomes (subscription, event) for rows without a recipient (every
# existing row) and (subscription, event, recipient) for those with one.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0007_subscription_names_unique'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='notificationdelivery',
            name='notif_delivery_once',
        ),
        migrations.AddField(
            model_name='notificationdelivery',
            name='recipient_id',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name='notificationdelivery',
            constraint=models.UniqueConstraint(
                condition=models.Q(('recipient_id__isnull', True)),
                fields=('subscription', 'event_id'),
                name='notif_delivery_once',
            ),
        ),
        migrations.AddConstraint(
            model_name='notificationdelivery',
            constraint=models.UniqueConstraint(
                condition=models.Q(('recipient_id__isnull', False)),
                fields=('subscription', 'event_id', 'recipient_id'),
                name='notif_delivery_once_per_recipient',
            ),
        ),
    ]
