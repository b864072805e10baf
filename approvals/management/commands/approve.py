"""``manage.py approve <execution_id> --user U --comment "..."``."""

from approvals.management.commands._vote import VoteCommand


class Command(VoteCommand):
    help = "Vote approve on an execution's approval as a user (the same rules as the pages and REST)."
    decision = "approve"
