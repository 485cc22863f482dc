"""PUT/DELETE /api/v1/users/me/avatar and the avatar images: the pipeline on real images
generated with Pillow, the streaming size limit, serving headers, URL changes."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from atrium.config import Settings
from atrium.context import AppContext
from tests.factories import signed_in
from tests.images import animated_gif, image_bytes, jpeg_with_gps, png_bomb

AVATAR = "/api/v1/users/me/avatar"
MAX_BYTES = 300_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.avatars.max_bytes = MAX_BYTES
    return settings


async def upload(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    data: bytes,
    name: str = "me.png",
    content_type: str = "image/png",
) -> httpx.Response:
    return await client.put(AVATAR, files={"file": (name, data, content_type)}, headers=auth)


async def fetch(client: httpx.AsyncClient, url: str) -> httpx.Response:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def test_png_is_stored_as_three_webp_sizes(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, image_bytes("PNG", (300, 200)))

    assert response.status_code == 200, response.text
    avatar = response.json()["avatar"]
    assert set(avatar) == {"64", "256", "512"}
    for size, url in avatar.items():
        served = await fetch(client, url)
        assert served.headers["content-type"] == "image/webp"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in served.headers["cache-control"]
        assert "max-age=31536000" in served.headers["cache-control"]
        image = decoded(served.content)
        assert image.format == "WEBP"
        assert image.size == (int(size), int(size))


async def test_tiny_image_is_accepted(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, image_bytes("PNG", (1, 1)))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
async def test_every_accepted_format_is_stored_as_square_webp_in_every_size(
    client: httpx.AsyncClient, fmt: str
) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, image_bytes(fmt, (50, 40)), name="x.bin")

    assert response.status_code == 200, response.text
    urls = response.json()["avatar"]
    assert set(urls) == {"64", "256", "512"}
    for size, url in urls.items():
        image = decoded((await fetch(client, url)).content)
        assert image.format == "WEBP"
        assert image.size == (int(size), int(size))


async def test_gps_and_exif_are_stripped(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    original = jpeg_with_gps()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the fixture has GPS

    response = await upload(client, auth, original, "photo.jpg", "image/jpeg")

    assert response.status_code == 200, response.text
    for url in response.json()["avatar"].values():
        data = (await fetch(client, url)).content
        image = decoded(data)
        assert not image.getexif().get_ifd(0x8825)
        assert len(image.getexif()) == 0
        assert "exif" not in image.info
        assert "icc_profile" not in image.info
        assert b"SecretCam" not in data
        assert b"Exif" not in data


async def test_huge_dimension_bomb_is_refused_before_decoding(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    bomb = png_bomb(30_000, 30_000)
    assert len(bomb) < 1000

    response = await upload(client, auth, bomb)

    assert response.status_code == 422
    assert response.json()["code"] == "image_too_large"


async def test_bomb_below_pillows_own_limit_is_refused_by_ours(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    ctx.settings.avatars.max_pixels = 1_000_000

    response = await upload(client, auth, png_bomb(2000, 1000))

    assert response.status_code == 422
    assert response.json()["code"] == "image_too_large"


async def test_truncated_image_is_422(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    whole = image_bytes("PNG", (200, 200), mode="RGB")
    noisy = Image.frombytes("RGB", (200, 200), bytes(range(256)) * 468 + bytes(192))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    truncated = out.getvalue()[: len(out.getvalue()) // 2]
    assert whole

    response = await upload(client, auth, truncated)

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_image"


async def test_polyglot_trailing_payload_is_dropped(client: httpx.AsyncClient) -> None:
    """A valid PNG followed by HTML/JS (a polyglot): the re-encoded avatar carries only
    pixels, never the payload."""
    auth = await signed_in(client)
    payload = b"<html><script>alert(document.cookie)</script></html>"
    polyglot = image_bytes("PNG", (40, 40)) + payload

    response = await upload(client, auth, polyglot, "x.html", "text/html")

    assert response.status_code == 200, response.text
    for url in response.json()["avatar"].values():
        served = await fetch(client, url)
        assert b"script" not in served.content
        assert served.headers["content-type"] == "image/webp"


@pytest.mark.parametrize(
    "data",
    [
        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
        b"%PDF-1.4\n%...",
        b"GIF87",  # a magic number prefix and nothing else
        b"\x00" * 100,
    ],
)
async def test_non_image_with_an_image_name_is_415(client: httpx.AsyncClient, data: bytes) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, data, "avatar.png", "image/png")

    assert response.status_code in (415, 422)
    assert response.json()["code"] in ("unsupported_image_type", "invalid_image")


async def test_unsupported_image_format_is_415(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, image_bytes("BMP", (10, 10)), "a.png", "image/png")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_image_type"


async def test_wrong_extension_is_detected_from_the_bytes(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, image_bytes("JPEG", (30, 30)), "cat.gif", "image/gif")

    assert response.status_code == 200, response.text
    from sqlalchemy import select

    from atrium.models import AuditEvent

    async with ctx.sessionmaker() as db:
        event = (
            await db.execute(
                select(AuditEvent).where(AuditEvent.action == "profile.avatar_changed")
            )
        ).scalar_one()
    assert event.details is not None
    assert event.details["source_format"] == "JPEG"


async def test_animated_gif_keeps_its_first_frame(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await upload(client, auth, animated_gif(), "a.gif", "image/gif")

    assert response.status_code == 200, response.text
    image = decoded((await fetch(client, response.json()["avatar"]["64"])).content)
    assert getattr(image, "n_frames", 1) == 1


async def test_cmyk_jpeg_is_converted(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    cmyk = image_bytes("JPEG", (60, 60), mode="CMYK")
    assert Image.open(io.BytesIO(cmyk)).mode == "CMYK"

    response = await upload(client, auth, cmyk, "print.jpg", "image/jpeg")

    assert response.status_code == 200, response.text
    image = decoded((await fetch(client, response.json()["avatar"]["256"])).content)
    assert image.mode == "RGB"


async def test_file_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    big = image_bytes("PNG", (8, 8)) + b"\x00" * MAX_BYTES

    response = await upload(client, auth, big)

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_size_limit_is_enforced_while_streaming(client: httpx.AsyncClient) -> None:
    """A chunked body (no Content-Length) far over the limit is refused after about the
    limit has been read: the rest of it is never pulled from the client."""
    auth = await signed_in(client)
    chunk = b"\x00" * 65_536
    total_chunks = 200  # 13 MB
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        for _ in range(total_chunks):
            sent += 1
            yield chunk
        yield b"\r\n--xyz--\r\n"

    response = await client.put(
        AVATAR,
        content=body(),
        headers={**auth, "Content-Type": "multipart/form-data; boundary=xyz"},
    )

    assert response.status_code == 413
    assert sent * len(chunk) <= MAX_BYTES + 2 * len(chunk) + 16_384
    assert sent < total_chunks


async def test_declared_length_over_the_limit_is_413_before_reading(
    client: httpx.AsyncClient,
) -> None:
    auth = await signed_in(client)
    read = False

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        read = True
        yield b"x"

    response = await client.put(
        AVATAR,
        content=body(),
        headers={
            **auth,
            "Content-Type": "multipart/form-data; boundary=xyz",
            "Content-Length": str(10 * MAX_BYTES),
        },
    )

    assert response.status_code == 413
    assert not read


async def test_other_routes_keep_the_global_body_limit(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await client.patch(
        "/api/v1/users/me/profile", content=b"{" + b" " * 2_000_000 + b"}", headers=auth
    )

    assert response.status_code == 413


async def test_new_avatar_has_new_urls_and_the_old_objects_are_deleted(
    client: httpx.AsyncClient,
) -> None:
    auth = await signed_in(client)
    first = (await upload(client, auth, image_bytes("PNG", (20, 20)))).json()["avatar"]

    second = (await upload(client, auth, image_bytes("JPEG", (20, 30)), "b.jpg")).json()["avatar"]

    assert set(first.values()).isdisjoint(second.values())
    for url in first.values():
        assert (await client.get(url)).status_code == 404
    for url in second.values():
        assert (await client.get(url)).status_code == 200


async def test_delete_avatar_removes_every_size(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    urls = (await upload(client, auth, image_bytes("PNG", (20, 20)))).json()["avatar"]

    response = await client.delete(AVATAR, headers=auth)

    assert response.status_code == 204
    assert (await client.get("/api/v1/users/me/profile", headers=auth)).json()["avatar"] is None
    for url in urls.values():
        assert (await client.get(url)).status_code == 404
    assert (await client.delete(AVATAR, headers=auth)).status_code == 204


async def test_unknown_avatar_url_is_404(client: httpx.AsyncClient) -> None:
    for url in (
        "/api/v1/avatars/00000000-0000-4000-8000-000000000009/0123456789abcdef01234567/64.webp",
        "/api/v1/avatars/00000000-0000-4000-8000-000000000009/..%2F..%2Fetc/64.webp",
        "/api/v1/avatars/00000000-0000-4000-8000-000000000009/0123456789abcdef01234567/x.png",
    ):
        assert (await client.get(url)).status_code == 404


async def test_avatar_requires_authentication(client: httpx.AsyncClient) -> None:
    response = await client.put(AVATAR, files={"file": ("a.png", image_bytes(), "image/png")})

    assert response.status_code == 401


async def test_image_work_runs_off_the_event_loop(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from atrium.profiles import avatars as service

    seen: list[bool] = []
    real = service.process_avatar

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(threading.current_thread() is threading.main_thread())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "process_avatar", spy)
    auth = await signed_in(client)

    await upload(client, auth, image_bytes())

    assert seen == [False]
