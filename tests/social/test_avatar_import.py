"""A new social account takes its provider's picture (issue 15): queued by the login,
fetched by the job ``social.import_avatars`` under the SSRF rules, re-encoded like an
upload, never over an avatar the owner chose, tried once."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from atrium.account.avatar_import import import_avatars_job
from atrium.context import AppContext
from atrium.core.jobs import JobContext
from atrium.models import AuditEvent, OAuthTicket, Profile, User
from atrium.profiles.avatar import avatar_key
from tests.images import image_bytes
from tests.social.conftest import sign_in
from tests.social.fake_idp import FakeIdP


async def _run(ctx: AppContext) -> None:
    await import_avatars_job(JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {}))


async def _profile(ctx: AppContext, email: str) -> tuple[User, Profile | None]:
    async with ctx.sessionmaker() as db:
        user = await db.scalar(select(User).where(User.email_normalized == email))
        assert user is not None
        return user, await db.get(Profile, user.id)


def _serve(idp: FakeIdP, name: str, status: int, body: bytes, **headers: str) -> str:
    idp.pictures[name] = (status, body, headers)
    return f"{idp.issuer}/pictures/{name}"


@pytest.fixture
def loopback(ctx: AppContext) -> None:
    """The fake provider is on 127.0.0.1: allowed here, as a private provider would be."""
    ctx.settings.social.avatar_allow_loopback = True


async def test_a_new_account_takes_the_provider_picture_in_the_background(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP, loopback: None
) -> None:
    idp.claims = {"picture": _serve(idp, "ada.png", 200, image_bytes("PNG", (300, 200)))}

    assert (await sign_in(browser)).status_code == 303
    assert idp.picture_fetches == 0  # the login did not wait for it
    await _run(ctx)

    user, profile = await _profile(ctx, "ada@example.com")
    assert profile is not None
    assert profile.avatar_version is not None
    for size in ctx.settings.avatars.sizes:
        stored = await ctx.storage.get_bytes(avatar_key(user.id, profile.avatar_version, size))
        image = Image.open(io.BytesIO(stored))
        assert (image.format, image.size) == ("WEBP", (size, size))
    async with ctx.sessionmaker() as db:
        changed = select(AuditEvent).where(AuditEvent.action == "profile.avatar_changed")
        [audit] = (await db.scalars(changed)).all()
    assert audit.target_id == str(user.id)
    assert (audit.details or {})["source"] == "social"

    await _run(ctx)  # the import was used: nothing is fetched again
    assert idp.picture_fetches == 1


async def test_github_avatar_url_is_imported_too(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP, loopback: None
) -> None:
    idp.github_user["avatar_url"] = _serve(idp, "octo.jpg", 200, image_bytes("JPEG", (80, 80)))

    assert (await sign_in(browser, "gh")).status_code == 303
    await _run(ctx)

    _, profile = await _profile(ctx, "octo@example.com")
    assert profile is not None
    assert profile.avatar_version is not None


async def test_a_picture_on_a_loopback_address_is_refused_by_default(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP
) -> None:
    idp.claims = {"picture": _serve(idp, "ada.png", 200, image_bytes("PNG"))}

    assert (await sign_in(browser)).status_code == 303
    await _run(ctx)

    assert idp.picture_fetches == 0  # refused before any connection
    _, profile = await _profile(ctx, "ada@example.com")
    assert profile is None or profile.avatar_version is None


@pytest.mark.parametrize(
    ("status", "body", "headers"),
    [
        (200, b"<html><script>alert(1)</script></html>", {"content-type": "image/png"}),
        (200, b"\0" * 300_000, {"content-type": "image/png"}),  # over avatars.max_bytes
        (404, b"gone", {}),
        (302, b"", {"location": "http://169.254.169.254/latest/meta-data/"}),
    ],
    ids=["not-an-image", "too-large", "not-found", "redirect"],
)
async def test_a_picture_that_cannot_be_used_leaves_the_account_without_one(
    browser: httpx.AsyncClient,
    ctx: AppContext,
    idp: FakeIdP,
    loopback: None,
    status: int,
    body: bytes,
    headers: dict[str, Any],
) -> None:
    ctx.settings.avatars.max_bytes = 200_000
    idp.claims = {"picture": _serve(idp, "bad", status, body, **headers)}

    assert (await sign_in(browser)).status_code == 303
    await _run(ctx)

    assert idp.picture_fetches == 1  # tried once, no redirect followed
    _, profile = await _profile(ctx, "ada@example.com")
    assert profile is None or profile.avatar_version is None
    async with ctx.sessionmaker() as db:
        query = select(OAuthTicket.used_at).where(OAuthTicket.kind == "avatar")
        used = (await db.scalars(query)).all()
    assert len(used) == 1
    assert used[0] is not None
    await _run(ctx)
    assert idp.picture_fetches == 1


async def test_an_avatar_the_owner_chose_first_is_kept(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP, loopback: None
) -> None:
    idp.claims = {"picture": _serve(idp, "ada.png", 200, image_bytes("PNG"))}
    assert (await sign_in(browser)).status_code == 303
    user, _ = await _profile(ctx, "ada@example.com")
    async with ctx.sessionmaker() as db:
        profile = await db.get(Profile, user.id)
        if profile is None:
            profile = Profile(
                user_id=user.id,
                visibility="public",
                location_visibility="public",
                website_visibility="public",
                pronouns_visibility="public",
                updated_at=ctx.clock.now(),
            )
            db.add(profile)
        profile.avatar_version = "chosen-by-owner"
        await db.commit()

    await _run(ctx)

    _, profile = await _profile(ctx, "ada@example.com")
    assert profile is not None
    assert profile.avatar_version == "chosen-by-owner"


async def test_an_existing_account_signing_in_again_queues_nothing(
    browser: httpx.AsyncClient, ctx: AppContext, idp: FakeIdP, loopback: None
) -> None:
    assert (await sign_in(browser)).status_code == 303  # no picture: nothing queued
    idp.claims = {"picture": _serve(idp, "ada.png", 200, image_bytes("PNG"))}
    assert (await sign_in(browser)).status_code == 303
    await _run(ctx)

    assert idp.picture_fetches == 0
