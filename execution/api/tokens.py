"""``/api/v1/tokens/``: a user's own API tokens (docs/api.md#tokens), for ``opsctl tokens``.

List, issue (the key is in the answer, once) and revoke one's own tokens, per tenant. A
request authenticated by a token sees and acts in that token's tenant only (the policy's
binding), and a token cannot issue one that outlives it. Another member's tokens are
managed on the members page by the tenant's admins.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError, PermissionDenied, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from execution import policy
from execution.api import serializers as s
from execution.models import ApiToken, Tenant
from execution.models.tokens import TOKEN_NAME_MAX
from execution.services.tokens import TokenRefused, api_token_create, api_token_revoke

_detail = inline_serializer("TokenDetail", {"detail": serializers.CharField()})


class TokenIn(serializers.Serializer):
    tenant = serializers.CharField(min_length=1, max_length=64, help_text="the tenant the token acts in")
    name = serializers.CharField(min_length=1, max_length=TOKEN_NAME_MAX, help_text="what it is for")
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="ISO 8601 with a time zone; absent or null: never"
    )


class TokenOut(serializers.Serializer):
    id = serializers.UUIDField()
    tenant = serializers.CharField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="the key's first 8 characters")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    last_used_from = serializers.CharField(allow_null=True)


class TokenIssuedOut(TokenOut):
    key = serializers.CharField(help_text="the key, shown in this answer only")


def token_payload(token: ApiToken) -> dict[str, Any]:
    return {
        "id": str(token.token_id),
        "tenant": token.tenant.slug if token.tenant else "",
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat() if token.expires_at else None,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
        "last_used_from": token.last_used_from,
    }


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError({"detail": f"{field}: {message}", "errors": [{"path": field, "message": message}]})


def _own_tokens(request: Request) -> Any:
    tenant_ids = policy.tenant_ids_where(request.user, policy.Right.TOKEN_ISSUE)
    return ApiToken.objects.filter(user_id=request.user.pk or 0, tenant_id__in=tenant_ids).select_related(
        "tenant"
    )


def _expiry(request: Request, asked: datetime | None) -> datetime | None:
    """A token-authenticated request issues no token that outlives its own."""
    own = request.auth.expires_at if isinstance(request.auth, ApiToken) else None
    if own is None:
        return asked
    if asked is None:
        return own
    if asked > own:
        raise _bad("expires_at", f"at most the expiry of the token making the request ({own.isoformat()})")
    return asked


class TokenListCreateView(APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="v1_tokens_list",
        parameters=[OpenApiParameter("tenant", str, description="only the tokens of this tenant")],
        responses={200: TokenOut(many=True), 401: _detail},
    )
    def get(self, request: Request) -> Response:
        tokens = _own_tokens(request)
        slug = request.query_params.get("tenant")
        if slug is not None:
            tokens = tokens.filter(tenant__slug=slug)
        return Response([token_payload(t) for t in tokens.order_by("tenant__slug", "name", "id")])

    @extend_schema(
        request=TokenIn,
        responses={201: TokenIssuedOut, 400: s.InvalidOut, 401: _detail, 403: s.RefusedOut, 404: _detail},
    )
    def post(self, request: Request) -> Response:
        try:
            data = request.data
        except ParseError as exc:
            raise _bad("body", str(exc.detail)) from None
        if not isinstance(data, dict):
            raise _bad("body", "a JSON object is required")
        unknown = sorted(set(data) - set(TokenIn().fields))
        if unknown:
            raise _bad(str(unknown[0])[:100], "unknown field")
        body = TokenIn(data=data)
        if not body.is_valid():
            field, problems = next(iter(body.errors.items()))
            raise _bad(field, str(problems[0]))
        tenant = Tenant.objects.filter(slug=body.validated_data["tenant"]).first()
        if tenant is None:
            raise NotFound("no such tenant")
        try:
            issued = api_token_create(
                actor=request.user,
                tenant=tenant,
                user=request.user,
                name=body.validated_data["name"],
                expires_at=_expiry(request, body.validated_data.get("expires_at")),
                door="rest",
            )
        except TokenRefused as refused:
            raise _bad(refused.field, refused.message) from None
        except policy.RightDenied as denied:
            if denied.hidden:  # another tenant (or another token's): simply unknown
                raise NotFound("no such tenant") from None
            raise PermissionDenied({"detail": denied.reason, "reason": denied.reason}) from None
        return Response({**token_payload(issued.token), "key": issued.key}, status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    @extend_schema(responses={204: None, 401: _detail, 403: s.RefusedOut, 404: _detail})
    def delete(self, request: Request, token_id: Any) -> Response:
        try:
            key = uuid.UUID(str(token_id))
        except ValueError:
            raise NotFound("no such token") from None
        # One's own token in any tenant; the policy then decides for its tenant (a token bound
        # elsewhere, a tenant left: 404 like an unknown id, and the refusal is recorded).
        token = (
            ApiToken.objects.filter(user_id=request.user.pk or 0, token_id=key)
            .select_related("user", "tenant")
            .first()
        )
        if token is None:
            raise NotFound("no such token")
        try:
            api_token_revoke(actor=request.user, token=token, door="rest")
        except policy.RightDenied as denied:
            if denied.hidden:
                raise NotFound("no such token") from None
            raise PermissionDenied({"detail": denied.reason, "reason": denied.reason}) from None
        return Response(status=status.HTTP_204_NO_CONTENT)
