"""Notifications (docs/contract.md#notifications): per-tenant subscriptions, e-mail and webhooks.

Flow: an event of a notifiable kind is committed -> the publisher registered with
``execution.services.events`` queues one django-q2 task -> a worker records one delivery per
matching subscription (masked body) and sends it -> failures are retried with back-off by
``deliver_due`` tasks that each cluster queues when a retry is due. Nothing is sent inside a
request, and nothing here ever waits on an execution or makes one wait.
"""
