"""The avatar route takes bodies past the global 1 MiB limit, up to its own 5 MB."""

from __future__ import annotations

import io
import os

import httpx
from PIL import Image

from atrium.context import AppContext
from tests.factories import signed_in


async def test_avatar_over_the_global_limit_but_under_its_own_is_accepted(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    noise = Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3))
    out = io.BytesIO()
    noise.save(out, format="PNG", compress_level=0)
    data = out.getvalue()
    assert ctx.settings.http.max_body_bytes < len(data) < ctx.settings.avatars.max_bytes

    response = await client.put(
        "/api/v1/users/me/avatar", files={"file": ("big.png", data, "image/png")}, headers=auth
    )

    assert response.status_code == 200, response.text
