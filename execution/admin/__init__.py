from execution.admin import executions, inventory, queue, retention, secrets, tenancy  # noqa: F401
