"""A customer's product driving Tollgate through a client generated from /openapi.json by
openapi-python-client: register, a duplicate email, login, a new key, metering up to the 429
with its structured body, usage, subscription, entitlements and a token refresh.

Usage: python lifecycle.py BASE_URL  (the generated package `tollgate_client` on PYTHONPATH)
"""

import sys
import uuid
from http import HTTPStatus

from tollgate_client import AuthenticatedClient, Client
from tollgate_client.api.accounts import login, refresh, register
from tollgate_client.api.keys import create_key
from tollgate_client.api.metering import get_entitlement, meter
from tollgate_client.api.usage import get_subscription, get_usage
from tollgate_client.models import (
    CreateKey,
    CreatedKey,
    Entitlement,
    ErrorBody,
    LoginRequest,
    MeterAnswer,
    MeterBody,
    RefreshRequest,
    RegisterRequest,
    RegisterResponse,
    SubscriptionView,
    TokenResponse,
    UsageSummary,
)


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"python client: {what}")


def main(base: str) -> None:
    public = Client(base_url=base, raise_on_unexpected_status=True)
    email = f"py-{uuid.uuid4().hex[:10]}@example.com"
    password = "correct horse battery"

    # Register: an account on the free plan, a session and a first key.
    answer = register.sync_detailed(
        client=public, body=RegisterRequest(email=email, password=password, full_name="Ada Py")
    )
    expect(answer.status_code == HTTPStatus.CREATED, f"register answered {answer.status_code}")
    account = answer.parsed
    expect(isinstance(account, RegisterResponse), f"register: {account!r}")
    expect(account.api_key.startswith("sk_"), "register gives an API key")

    # The same email again: 409 with its stable code.
    answer = register.sync_detailed(
        client=public, body=RegisterRequest(email=email, password=password)
    )
    expect(answer.status_code == HTTPStatus.CONFLICT, f"duplicate: {answer.status_code}")
    expect(isinstance(answer.parsed, ErrorBody), "a duplicate answers the error shape")
    expect(answer.parsed.error.code.value == "email_taken", f"code {answer.parsed.error.code}")
    expect(answer.parsed.error.request_id != "", "errors carry a request id")

    tokens = login.sync(client=public, body=LoginRequest(email=email, password=password))
    expect(isinstance(tokens, TokenResponse), f"login: {tokens!r}")
    expect(tokens.user.email == email, "login returns the account")

    as_user = AuthenticatedClient(base_url=base, token=tokens.access_token)
    created = create_key.sync(client=as_user, body=CreateKey(name="backend", scopes=["meter", "read"]))
    expect(isinstance(created, CreatedKey), f"create key: {created!r}")
    expect(created.key.scopes == ["meter", "read"], f"scopes {created.key.scopes}")

    # The customer's backend meters with its key until the free plan's daily quota is spent.
    backend = AuthenticatedClient(base_url=base, token=created.api_key)
    allowed = 0
    while True:
        answer = meter.sync_detailed(client=backend, body=MeterBody(metric="videos", amount=1))
        if answer.status_code != HTTPStatus.OK:
            break
        expect(isinstance(answer.parsed, MeterAnswer) and answer.parsed.allowed, "allowed")
        allowed += 1
        expect(allowed <= 100, "the quota never ran out")
    expect(answer.status_code == HTTPStatus.TOO_MANY_REQUESTS, f"meter: {answer.status_code}")
    refusal = answer.parsed
    expect(isinstance(refusal, ErrorBody), "a refusal answers the error shape")
    expect(refusal.error.code.value == "quota_exceeded", f"code {refusal.error.code}")
    details = refusal.error.additional_properties
    expect(details["metric"] == "videos", f"details {details}")
    expect(details["used"] == details["limit"] == allowed, f"used/limit {details}")
    expect(details["upgrade_to"] == "pro", f"upgrade_to {details}")
    expect("retry-after" in answer.headers, "a 429 says when to retry")

    usage = get_usage.sync(client=backend)
    expect(isinstance(usage, UsageSummary), f"usage: {usage!r}")
    videos = usage.metrics.additional_properties["videos"]
    expect(videos.used == allowed and videos.remaining == 0, f"usage {videos}")

    subscription = get_subscription.sync(client=backend)
    expect(isinstance(subscription, SubscriptionView), f"subscription: {subscription!r}")
    expect(subscription.plan_id == "free", f"plan {subscription.plan_id}")

    entitlement = get_entitlement.sync(feature="vision", client=backend)
    expect(isinstance(entitlement, Entitlement), f"entitlement: {entitlement!r}")
    expect(entitlement.allowed is False and entitlement.upgrade_to == "pro", f"{entitlement}")

    rotated = refresh.sync(client=public, body=RefreshRequest(refresh_token=tokens.refresh_token))
    expect(isinstance(rotated, TokenResponse), f"refresh: {rotated!r}")
    expect(rotated.refresh_token != tokens.refresh_token, "refresh rotates the token")
    answer = refresh.sync_detailed(
        client=public, body=RefreshRequest(refresh_token=tokens.refresh_token)
    )
    expect(answer.status_code == HTTPStatus.UNAUTHORIZED, "a used refresh token is refused")
    expect(answer.parsed.error.code.value == "refresh_token_reused", f"{answer.parsed.error.code}")

    print(f"python client: life cycle passed ({allowed} calls metered before the 429)")


if __name__ == "__main__":
    main(sys.argv[1])
