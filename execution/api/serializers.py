"""Serializers that document the API's bodies for the OpenAPI schema (drf-spectacular).

Bodies are built by ``payloads.py``; these describe them (and the submission input) so
the schema and a schemathesis run can check every response.
"""

from __future__ import annotations

from rest_framework import serializers

from execution.enums import ActionClass, ApprovalState, Environment, ExecutionMode, ExecutionStatus, SlaClass


class TargetIn(serializers.Serializer):
    asset_id = serializers.JSONField(required=False, help_text="asset id (integer or string)")
    hostname = serializers.CharField(required=False, max_length=255)


class StepIn(serializers.Serializer):
    name = serializers.CharField(min_length=1, max_length=200)
    type = serializers.CharField(
        help_text="command, http, sql, file, validate, noop, sleep or an alias (docs/contract.md#steps)"
    )
    target = TargetIn(required=False)
    params = serializers.DictField(required=False)
    action_class = serializers.ChoiceField(choices=ActionClass.choices, required=False)
    timeout_seconds = serializers.FloatField(required=False, min_value=0)
    continue_on_error = serializers.BooleanField(required=False)
    max_retries = serializers.IntegerField(required=False, min_value=0, max_value=10)


class PlanIn(serializers.Serializer):
    name = serializers.CharField(min_length=1, max_length=200)
    environment = serializers.ChoiceField(choices=Environment.choices)
    estimated_duration_seconds = serializers.FloatField(required=False, min_value=0)
    steps = serializers.ListField(child=StepIn(), min_length=1, max_length=200)


class SubmissionIn(serializers.Serializer):
    tenant = serializers.CharField(min_length=1, max_length=64)
    plan = PlanIn()
    approval_level = serializers.IntegerField(required=False, min_value=0, max_value=3)
    sla_class = serializers.ChoiceField(choices=SlaClass.choices, required=False)
    priority = serializers.IntegerField(required=False, min_value=1, max_value=10)
    dry_run = serializers.BooleanField(required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=64), required=False)
    metadata = serializers.DictField(required=False)
    trace_id = serializers.CharField(required=False, max_length=128)
    parent_execution_id = serializers.UUIDField(required=False)
    on_behalf_of = serializers.CharField(
        required=False,
        min_length=1,
        max_length=150,
        help_text="username of a tenant member; needs can_submit_on_behalf on the caller",
    )


class TargetOut(serializers.Serializer):
    asset_id = serializers.CharField(allow_null=True)
    hostname = serializers.CharField(allow_null=True)


class StepOut(serializers.Serializer):
    index = serializers.IntegerField()
    name = serializers.CharField()
    type = serializers.CharField()
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    action_class = serializers.ChoiceField(choices=ActionClass.choices)
    target = TargetOut()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    retry_count = serializers.IntegerField()
    max_retries = serializers.IntegerField()
    exit_code = serializers.IntegerField(allow_null=True)
    output = serializers.JSONField(allow_null=True)
    error_message = serializers.CharField(allow_blank=True)


class VoteSummaryOut(serializers.Serializer):
    voter = serializers.CharField()
    decision = serializers.CharField()
    comment = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ApprovalSummaryOut(serializers.Serializer):
    state = serializers.ChoiceField(choices=ApprovalState.choices)
    approval_level = serializers.IntegerField()
    expires_at = serializers.DateTimeField()
    run_window = serializers.DictField(
        allow_null=True,
        help_text="{start, end}: approved for this run window, the execution waits queued until its start",
    )
    votes = VoteSummaryOut(many=True)


class ProgressOut(serializers.Serializer):
    percent = serializers.IntegerField()
    steps_done = serializers.IntegerField()
    steps_total = serializers.IntegerField()
    eta_seconds = serializers.IntegerField(allow_null=True)


class LinksOut(serializers.Serializer):
    self = serializers.CharField()
    events = serializers.CharField()
    cancel = serializers.CharField()
    websocket = serializers.CharField()
    page = serializers.CharField()


class ExecutionSummaryOut(serializers.Serializer):
    execution_id = serializers.UUIDField()
    tenant = serializers.CharField()
    actor = serializers.CharField()
    plan_name = serializers.CharField(allow_blank=True)
    status = serializers.ChoiceField(choices=ExecutionStatus.choices)
    execution_mode = serializers.ChoiceField(choices=ExecutionMode.choices)
    sla_class = serializers.ChoiceField(choices=SlaClass.choices)
    action_class = serializers.ChoiceField(choices=ActionClass.choices)
    approval_level = serializers.IntegerField()
    priority = serializers.IntegerField()
    environment = serializers.ChoiceField(choices=Environment.choices)
    dry_run = serializers.BooleanField()
    tags = serializers.ListField(child=serializers.CharField())
    metadata = serializers.DictField()
    trace_id = serializers.CharField(allow_blank=True)
    parent_execution_id = serializers.UUIDField(allow_null=True)
    plan_hash = serializers.CharField(allow_blank=True)
    runbook = serializers.CharField(allow_null=True, help_text="the runbook launched (docs/runbooks.md)")
    runbook_version = serializers.IntegerField(allow_null=True)
    params = serializers.DictField(allow_null=True, help_text="the launch's parameter values")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    timeout_at = serializers.DateTimeField(allow_null=True)
    error_message = serializers.CharField(allow_blank=True)
    links = LinksOut()


class ExecutionOut(ExecutionSummaryOut):
    steps = StepOut(many=True)
    approval = ApprovalSummaryOut(allow_null=True)
    progress = ProgressOut(required=False)


class EventOut(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.UUIDField()
    type = serializers.CharField()
    execution_id = serializers.UUIDField()
    step_index = serializers.IntegerField(allow_null=True)
    from_status = serializers.CharField(allow_null=True)
    to_status = serializers.CharField(allow_null=True)
    actor = serializers.CharField(allow_null=True)
    actor_type = serializers.CharField()
    details = serializers.DictField()
    error_message = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class EventPageOut(serializers.Serializer):
    results = EventOut(many=True)
    last_id = serializers.IntegerField(allow_null=True, help_text="pass as ?after= to continue")


class DeadLetterOut(serializers.Serializer):
    dlq_id = serializers.UUIDField()
    execution_id = serializers.UUIDField()
    tenant = serializers.CharField()
    failure_reason = serializers.CharField(allow_blank=True)
    attempt_count = serializers.IntegerField()
    last_error = serializers.CharField(allow_blank=True)
    sla_class = serializers.ChoiceField(choices=SlaClass.choices)
    failed_at = serializers.DateTimeField()
    requeued = serializers.BooleanField()
    requeued_at = serializers.DateTimeField(allow_null=True)
    requeued_by = serializers.CharField(allow_null=True)
    archived = serializers.BooleanField()


class ProblemOut(serializers.Serializer):
    path = serializers.CharField()
    message = serializers.CharField()


class CancelIn(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class InvalidOut(serializers.Serializer):
    detail = serializers.CharField()
    errors = ProblemOut(many=True)  # type: ignore[assignment]  # a field, not Serializer.errors


class RefusedOut(serializers.Serializer):
    detail = serializers.CharField()
    reason = serializers.CharField()


class KeyReusedOut(RefusedOut):
    execution_id = serializers.UUIDField(help_text="the execution that holds the Idempotency-Key")


class FinishedOut(RefusedOut):
    status = serializers.CharField(help_text="the status the execution has")
