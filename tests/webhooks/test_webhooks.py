"""Webhook administration and signed delivery to a loopback receiver (Standard Webhooks,
verified with the `standardwebhooks` package)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.events.service import emit
from atrium.models import AuditEvent, WebhookEndpoint
from tests.dispatch import dispatch
from tests.factories import signed_in, signed_in_as
from tests.webhooks.conftest import Receiver, worker

HOOKS = "/api/v1/admin/webhooks"


async def admin(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, str]:
    _, headers = await signed_in_as(client, ctx, "root@example.com", "admin")
    return headers


async def create(
    client: httpx.AsyncClient, auth: dict[str, str], url: str, types: list[str]
) -> dict[str, object]:
    response = await client.post(HOOKS, json={"url": url, "event_types": types}, headers=auth)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def emit_one(ctx: AppContext, type_: str = "user.updated") -> uuid.UUID:
    data = {"fields": ["name"]} if type_ == "user.updated" else None
    async with ctx.sessionmaker() as db:
        event = await emit(db, type_, subject=uuid.uuid4(), data=data, at=ctx.clock.now())
        await db.commit()
        return event.id


async def test_managing_endpoints_needs_the_permission(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    response = await client.get(HOOKS, headers=auth)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


async def test_endpoint_lifecycle_shows_the_secret_once_and_is_audited(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver
) -> None:
    auth = await admin(client, ctx)

    created = await create(client, auth, receiver.url, ["user.*", "role.granted", "user.*"])

    assert str(created["secret"]).startswith("whsec_")
    assert created["event_types"] == ["user.*", "role.granted"]
    hook_id = created["id"]
    listed = (await client.get(HOOKS, headers=auth)).json()
    assert [h["id"] for h in listed] == [hook_id]
    assert "secret" not in listed[0]
    patched = await client.patch(
        f"{HOOKS}/{hook_id}", json={"description": "CRM", "enabled": False}, headers=auth
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["description"], patched.json()["enabled"]) == ("CRM", False)
    async with ctx.sessionmaker() as db:
        stored = await db.get(WebhookEndpoint, uuid.UUID(str(hook_id)))
        assert stored is not None
        assert str(created["secret"]).encode() not in stored.secret  # encrypted at rest
    assert (await client.delete(f"{HOOKS}/{hook_id}", headers=auth)).status_code == 204
    assert (await client.get(f"{HOOKS}/{hook_id}", headers=auth)).status_code == 404
    async with ctx.sessionmaker() as db:
        actions = list(
            (
                await db.execute(
                    select(AuditEvent.action).where(AuditEvent.target_id == str(hook_id))
                )
            ).scalars()
        )
    assert sorted(actions) == ["webhook.created", "webhook.deleted", "webhook.updated"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "ftp://example.com/x", "event_types": ["*"]}, "webhook_url_refused"),
        ({"url": "http://169.254.169.254/latest", "event_types": ["*"]}, "webhook_url_refused"),
        ({"url": "http://10.1.2.3/hook", "event_types": ["*"]}, "webhook_url_refused"),
        ({"url": "https://example.com/hook", "event_types": ["nope.*"]}, "unknown_event_type"),
        ({"url": "https://example.com/hook", "event_types": []}, "validation_error"),
    ],
)
async def test_bad_endpoints_are_refused(
    client: httpx.AsyncClient, ctx: AppContext, body: dict[str, object], code: str
) -> None:
    auth = await admin(client, ctx)
    response = await client.post(HOOKS, json=body, headers=auth)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert (await client.get(HOOKS, headers=auth)).json() == []


async def test_matching_events_are_delivered_signed_per_standard_webhooks(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver
) -> None:
    auth = await admin(client, ctx)
    hook = await create(client, auth, receiver.url, ["user.*"])
    receiver.requests.clear()
    await dispatch(ctx)  # the admin's own registration events
    await worker(ctx).drain()
    receiver.requests.clear()

    event_id = await emit_one(ctx, "user.updated")
    await dispatch(ctx)
    assert await worker(ctx).drain() == 1

    [request] = receiver.requests
    payload = Webhook(str(hook["secret"])).verify(request.body, request.headers)
    assert payload["id"] == str(event_id)
    assert payload["type"] == "user.updated"
    assert request.headers["webhook-id"] == str(event_id)
    assert request.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 44).verify(request.body, request.headers)
    log = (await client.get(f"{HOOKS}/{hook['id']}/deliveries", headers=auth)).json()
    assert log[0]["status"] == "delivered"
    assert log[0]["attempt_log"][0]["status_code"] == 204


async def test_types_not_taken_by_the_endpoint_are_not_sent(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver
) -> None:
    auth = await admin(client, ctx)
    await create(client, auth, receiver.url, ["role.granted"])
    await dispatch(ctx)
    await worker(ctx).drain()
    receiver.requests.clear()

    await emit_one(ctx, "user.updated")
    await dispatch(ctx)

    assert await worker(ctx).drain() == 0
    assert receiver.requests == []


async def test_rotation_signs_with_both_secrets_during_the_overlap(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver, clock: FrozenClock
) -> None:
    auth = await admin(client, ctx)
    hook = await create(client, auth, receiver.url, ["user.updated"])
    rotated = await client.post(f"{HOOKS}/{hook['id']}/rotate-secret", headers=auth)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    assert rotated.json()["previous_secret_expires_at"] is not None

    await emit_one(ctx)
    await dispatch(ctx)
    await worker(ctx).drain()
    [during] = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (hook["secret"], new_secret):
        Webhook(str(secret)).verify(during.body, during.headers)

    clock.advance(seconds=ctx.settings.webhooks.rotation_overlap_seconds + 1)
    await emit_one(ctx)
    await dispatch(ctx)
    await worker(ctx).drain()
    after = receiver.requests[1]
    body = after.body.decode()
    expected = Webhook(new_secret).sign(after.headers["webhook-id"], clock.now(), body)
    assert after.headers["webhook-signature"] == expected


async def test_the_test_route_sends_a_signed_test_message(
    client: httpx.AsyncClient, ctx: AppContext, receiver: Receiver
) -> None:
    auth = await admin(client, ctx)
    hook = await create(client, auth, receiver.url, ["role.granted"])

    response = await client.post(f"{HOOKS}/{hook['id']}/test", headers=auth)
    assert response.status_code == 202, response.text
    await worker(ctx).drain()

    [request] = receiver.requests
    payload = Webhook(str(hook["secret"])).verify(request.body, request.headers)
    assert payload["type"] == "webhook.test"
    assert json.loads(request.body)["subject"]["id"] == hook["id"]
