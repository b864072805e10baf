"""Operator pages: the approvals queue and detail (vote form), and the dead-letter list."""
