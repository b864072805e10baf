from tests.execution.realtime.conftest import watch_setup
from tests.support.browser import browser, page

__all__ = ["browser", "page", "watch_setup"]
