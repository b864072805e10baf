"""``manage.py reject <execution_id> --user U --comment "..."``."""

from approvals.management.commands._vote import VoteCommand


class Command(VoteCommand):
    help = "Vote reject on an execution's approval as a user (one rejection rejects)."
    decision = "reject"
