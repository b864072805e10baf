from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_schedules(sender: Any, **kwargs: Any) -> None:
    # Setup, not domain behaviour: keep the periodic jobs in step with the code after migrate.
    from opsconductor.schedules import schedules_ensure

    schedules_ensure()


class ExecutionConfig(AppConfig):
    name = "execution"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_ensure_schedules, sender=self, dispatch_uid="opsconductor-schedules")
        # docs/contract.md#live-progress
        from execution.realtime.publisher import publisher_install

        publisher_install()
        # docs/contract.md#queue-and-workers wake-ups
        from execution.worker.wake import notify_clusters, register_waker

        register_waker(notify_clusters)
