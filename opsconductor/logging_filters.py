"""Python logging as a masking sink (docs/contract.md#secrets-and-masking): every record passes through
``mask_text``. And a refusal logged by Django (``PermissionDenied``) without its traceback."""

from __future__ import annotations

import logging


class MaskSecretsFilter(logging.Filter):
    """Masks the formatted message (and a traceback, if any) of every record.

    It masks the secrets currently resolved in this process (``active_secrets``) and every
    pattern of ``execution.masking``. The formatted message replaces ``msg``/``args`` so no
    handler can format the unmasked arguments again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        from execution.masking import active_secrets, mask_text

        secrets = active_secrets()
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the record, mask what we have
            message = str(record.msg)
        record.msg = mask_text(message, secrets)
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text, secrets)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info, secrets)
        return True


class RefusalWithoutTraceback(logging.Filter):
    """Drops the traceback of Django's "Forbidden (Permission denied)" record: a refusal is
    the policy working, not a fault; the line (status and path) stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        from django.core.exceptions import PermissionDenied

        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True
