from execution.admin import executions, inventory, limits, queue, retention, secrets, tenancy  # noqa: F401
