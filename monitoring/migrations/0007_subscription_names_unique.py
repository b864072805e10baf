"""A subscription's name is unique in its tenant. Existing duplicates are kept, renamed: the
oldest keeps the name, each later one gets " (2)", " (3)", ... (cut to fit 100 characters,
never clashing with another name of the tenant)."""

from django.db import migrations, models

MAX_LENGTH = 100


def rename_duplicates(apps, schema_editor):
    Subscription = apps.get_model("monitoring", "NotificationSubscription")
    taken: dict[int, set[str]] = {}
    for row in Subscription.objects.order_by("tenant_id", "id").only("id", "tenant_id", "name"):
        names = taken.setdefault(row.tenant_id, set())
        if row.name not in names:
            names.add(row.name)
            continue
        n = 2
        while True:
            suffix = f" ({n})"
            candidate = row.name[: MAX_LENGTH - len(suffix)] + suffix
            if candidate not in names and not Subscription.objects.filter(
                tenant_id=row.tenant_id, name=candidate
            ).exists():
                break
            n += 1
        names.add(candidate)
        Subscription.objects.filter(pk=row.pk).update(name=candidate)


class Migration(migrations.Migration):

    dependencies = [
        ('monitoring', '0006_delivery_plural'),
    ]

    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='notificationsubscription',
            constraint=models.UniqueConstraint(fields=('tenant', 'name'), name='notif_sub_tenant_name_unique'),
        ),
    ]
