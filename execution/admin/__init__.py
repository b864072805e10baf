from execution.admin import executions, inventory, limits, queue, retention, runbooks, secrets, tenancy  # noqa: F401
