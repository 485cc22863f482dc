"""/api/v1/files on both storage backends: upload, list, read, download, delete, owner
checks, types sniffed from content, limits, rate limit, malware scanning."""

from __future__ import annotations

import io
import uuid
import zipfile

import httpx
import pytest
from sqlalchemy import select

from atrium.config import RateLimitSettings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuditEvent
from tests.factories import signed_in, signed_in_as
from tests.files.fake_clamd import EICAR, FakeClamd
from tests.images import image_bytes

FILES = "/api/v1/files"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def zip_bytes(**members: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


async def upload(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    data: bytes = PDF,
    name: str = "report.pdf",
    content_type: str = "application/pdf",
) -> httpx.Response:
    return await client.post(FILES, files={"file": (name, data, content_type)}, headers=auth)


async def test_upload_then_download_round_trips(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    created = await upload(client, auth)

    assert created.status_code == 201, created.text
    body = created.json()
    assert body["content_type"] == "application/pdf"
    assert body["size_bytes"] == len(PDF)
    assert body["filename"] == "report.pdf"
    download = await client.get(body["content_url"], headers=auth)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    )
    assert download.headers["x-content-type-options"] == "nosniff"
    assert (await client.get(f"{FILES}/{body['id']}", headers=auth)).json() == body


async def test_type_comes_from_the_content_not_the_name_or_header(
    client: httpx.AsyncClient,
) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, image_bytes("PNG"), "notes.pdf", "application/pdf")

    assert response.status_code == 201
    assert response.json()["content_type"] == "image/png"
    download = await client.get(response.json()["content_url"], headers=auth)
    assert download.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    "data",
    [
        b"<html><script>alert(1)</script></html>",
        b"#!/bin/sh\nrm -rf /\n",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 64,  # PE executable
        image_bytes("BMP"),
    ],
)
async def test_type_not_allowed_is_415(client: httpx.AsyncClient, data: bytes) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, data, "innocent.pdf", "application/pdf")

    assert response.status_code == 415
    assert response.json()["code"] == "file_type_not_allowed"
    (error,) = response.json()["errors"]
    assert error["loc"] == ["body", "file"]
    assert error["msg"] in (
        "the type of the content is not recognised",
        "image/bmp is not an allowed type",
        "application/x-msdownload is not an allowed type",
    )
    assert (await client.get(FILES, headers=auth)).json()["items"] == []


async def test_allowed_types_are_a_setting(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await signed_in(client)
    ctx.settings.files.allowed_types = ["image/png"]

    assert (await upload(client, auth)).status_code == 415
    assert (await upload(client, auth, image_bytes("PNG"), "a.png")).status_code == 201


async def test_empty_file_is_422(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, b"")

    assert response.status_code == 422
    assert response.json()["code"] == "empty_file"


async def test_file_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, PDF + b"\x00" * 200_000)

    assert response.status_code == 413
    assert (await client.get(FILES, headers=auth)).json()["items"] == []


@pytest.mark.parametrize(
    ("name", "ascii_name", "encoded"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\me\\doc.pdf", "doc.pdf", "doc.pdf"),
        ('evil"; filename="x.html.pdf', "evil_22_ filename__22x.html.pdf", None),
        ("résumé 2026.pdf", "resume 2026.pdf", "r%C3%A9sum%C3%A9%202026.pdf"),
        ("报告.pdf", "file.pdf", "%E6%8A%A5%E5%91%8A.pdf"),
        # httpx percent-encodes CR/LF in multipart names; raw ones: test_naming below.
        ("line\r\nbreak.pdf", "line_0D_0Abreak.pdf", "line%250D%250Abreak.pdf"),
        ("...", "file", "file"),
    ],
)
async def test_download_name_is_safe(
    client: httpx.AsyncClient, name: str, ascii_name: str, encoded: str | None
) -> None:
    auth = await signed_in(client)
    created = (await upload(client, auth, PDF, name)).json()

    download = await client.get(created["content_url"], headers=auth)

    disposition = download.headers["content-disposition"]
    assert disposition.startswith(f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''")
    if encoded is not None:
        assert disposition.endswith(encoded)
    assert "\r" not in disposition
    assert "\n" not in disposition
    assert disposition.count('"') == 2
    assert "/" not in created["filename"]
    assert "\\" not in created["filename"]


async def test_another_users_file_is_404_like_a_missing_one(client: httpx.AsyncClient) -> None:
    owner = await signed_in(client, "owner@example.com")
    other = await signed_in(client, "other@example.com")
    file_id = (await upload(client, owner)).json()["id"]
    missing = f"{FILES}/{uuid.uuid4()}"

    for suffix in ("", "/content"):
        theirs = await client.get(f"{FILES}/{file_id}{suffix}", headers=other)
        unknown = await client.get(f"{missing}{suffix}", headers=other)
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json() == unknown.json()
    assert (await client.delete(f"{FILES}/{file_id}", headers=other)).status_code == 404
    assert (await client.get(f"{FILES}/{file_id}/content", headers=owner)).status_code == 200
    assert (await client.get(FILES, headers=other)).json()["items"] == []


async def test_files_manage_reads_and_deletes_any_file(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    owner = await signed_in(client, "owner@example.com")
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    file_id = (await upload(client, owner)).json()["id"]

    assert (await client.get(f"{FILES}/{file_id}/content", headers=admin)).content == PDF
    assert (await client.delete(f"{FILES}/{file_id}", headers=admin)).status_code == 204
    assert (await client.get(f"{FILES}/{file_id}", headers=owner)).status_code == 404


async def test_moderators_do_not_hold_files_manage(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    owner = await signed_in(client, "owner@example.com")
    _, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    file_id = (await upload(client, owner)).json()["id"]

    assert (await client.get(f"{FILES}/{file_id}", headers=moderator)).status_code == 404


async def test_list_is_paginated_newest_first(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    ids = []
    for _ in range(5):
        ids.append((await upload(client, auth)).json()["id"])
        clock.advance(seconds=1)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get(FILES, params=params, headers=auth)).json()
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == list(reversed(ids))
    assert pages == 3


async def test_bad_cursor_is_400(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await client.get(FILES, params={"cursor": "garbage!"}, headers=auth)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


async def test_uploads_are_rate_limited_per_account(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    from atrium.core.ratelimit import RateLimiter

    ctx.settings.rate_limit = RateLimitSettings(uploads="2/hour")
    ctx.ratelimiter = RateLimiter(ctx.settings)
    auth = await signed_in(client, "a@example.com")
    other = await signed_in(client, "b@example.com")

    assert (await upload(client, auth)).status_code == 201
    assert (await upload(client, auth)).status_code == 201
    refused = await upload(client, auth)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert "retry-after" in refused.headers
    assert (await upload(client, other)).status_code == 201


async def test_files_require_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get(FILES)).status_code == 401
    assert (await client.post(FILES, files={"file": ("a", PDF, "x")})).status_code == 401


async def test_upload_is_audited(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await signed_in(client)
    file_id = (await upload(client, auth)).json()["id"]
    await client.delete(f"{FILES}/{file_id}", headers=auth)

    async with ctx.sessionmaker() as db:
        actions = (
            (await db.execute(select(AuditEvent.action).where(AuditEvent.target_id == file_id)))
            .scalars()
            .all()
        )
    assert sorted(actions) == ["file.deleted", "file.uploaded"]


# --- malware scanning (clamd INSTREAM, against a protocol-faithful fake) ------------------


async def test_clean_upload_is_scanned_and_stored(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    with FakeClamd() as clamd:
        ctx.settings.files.clamd_host = "127.0.0.1"
        ctx.settings.files.clamd_port = clamd.port

        response = await upload(client, auth)

    assert response.status_code == 201, response.text
    assert clamd.scanned == [PDF]
    download = await client.get(response.json()["content_url"], headers=auth)
    assert download.content == PDF  # the scan did not consume the stream


async def test_infected_upload_is_refused_and_audited(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    infected = zip_bytes(**{"eicar.com": EICAR})
    with FakeClamd() as clamd:
        ctx.settings.files.clamd_host = "127.0.0.1"
        ctx.settings.files.clamd_port = clamd.port

        response = await upload(client, auth, infected, "fun.zip", "application/zip")

    assert response.status_code == 422
    assert response.json()["code"] == "malware_detected"
    assert (await client.get(FILES, headers=auth)).json()["items"] == []
    async with ctx.sessionmaker() as db:
        event = (
            await db.execute(select(AuditEvent).where(AuditEvent.action == "file.malware_detected"))
        ).scalar_one()
    assert event.details is not None
    assert event.details["signature"] == "Win.Test.EICAR_HDB-1"
    assert event.details["filename"] == "fun.zip"


async def test_scanner_error_reply_fails_closed(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await signed_in(client)
    with FakeClamd(stream_max_length=10) as clamd:
        ctx.settings.files.clamd_host = "127.0.0.1"
        ctx.settings.files.clamd_port = clamd.port

        response = await upload(client, auth)

    assert response.status_code == 503
    assert response.json()["code"] == "scanner_unavailable"
    assert (await client.get(FILES, headers=auth)).json()["items"] == []


async def test_unreachable_scanner_fails_closed(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await signed_in(client)
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ctx.settings.files.clamd_host = "127.0.0.1"
    ctx.settings.files.clamd_port = port

    response = await upload(client, auth)

    assert response.status_code == 503
    assert response.json()["code"] == "scanner_unavailable"


@pytest.mark.parametrize(
    ("raw", "clean", "header"),
    [
        ("a\r\nb.pdf", "ab.pdf", "attachment; filename=\"ab.pdf\"; filename*=UTF-8''ab.pdf"),
        (
            "x\u202egpj.exe",
            "xgpj.exe",
            "attachment; filename=\"xgpj.exe\"; filename*=UTF-8''xgpj.exe",
        ),
        ('q"u\\o/te.pdf', "te.pdf", "attachment; filename=\"te.pdf\"; filename*=UTF-8''te.pdf"),
        ("...", "file", "attachment; filename=\"file\"; filename*=UTF-8''file"),
        ("a" * 300 + ".pdf", "a" * 196 + ".pdf", None),
    ],
)
def test_naming(raw: str, clean: str, header: str | None) -> None:
    from atrium.files.naming import clean_filename, content_disposition

    assert clean_filename(raw) == clean
    if header is not None:
        assert content_disposition(clean_filename(raw)) == header
