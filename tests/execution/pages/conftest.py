from tests.execution.realtime.conftest import watch_setup

__all__ = ["watch_setup"]
