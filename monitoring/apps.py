from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from monitoring import checks  # noqa: F401 - registers the system checks
        from monitoring.notifications.publisher import notification_publisher_install

        notification_publisher_install()
