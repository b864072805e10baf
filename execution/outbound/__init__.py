"""The one outbound guard (docs/security.md "Outbound connections").

Every sender checks its destination here and connects to the address checked:
``check_url`` / ``check_host`` (guard.py), ``guarded_session`` / ``pinned`` /
``tcp_connect`` (transport.py). The address rules are addresses.py, the allow-list and
openings rules.py, the product's own ports own.py.
"""

from execution.outbound.guard import (
    Checked,
    OutboundRefused,
    OutboundUnresolved,
    check_host,
    check_url,
    url_problem,
    url_unlisted,
)
from execution.outbound.transport import guarded_session, operator_check, pinned, tcp_connect

__all__ = [
    "Checked",
    "OutboundRefused",
    "OutboundUnresolved",
    "check_host",
    "check_url",
    "guarded_session",
    "operator_check",
    "pinned",
    "tcp_connect",
    "url_problem",
    "url_unlisted",
]
