from execution.admin import executions, inventory, queue, secrets, tenancy  # noqa: F401
