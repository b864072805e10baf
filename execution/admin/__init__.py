from execution.admin import executions, inventory, queue, tenancy  # noqa: F401
