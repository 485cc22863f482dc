"""The export is built by streaming, on both storage backends (local directory, S3 on
moto's server): a stored file goes through the ZIP intact, and on the local backend the
build's peak memory is a fraction of the file's size."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
import uuid
import zipfile

import httpx
import pytest

from atrium.config import Settings
from atrium.context import AppContext
from atrium.models import StoredFile
from atrium.privacy.jobs import build_pending_exports
from tests.conftest import s3_settings
from tests.factories import login, register
from tests.privacy.helpers import job_context

BIG = 24 * 1024 * 1024


@pytest.fixture
def settings(settings: Settings, storage_backend: str, request: pytest.FixtureRequest) -> Settings:
    if storage_backend == "s3":
        settings.storage = s3_settings(request.getfixturevalue("s3_server"))
    return settings


class _Random(io.RawIOBase):
    """``size`` random bytes, produced 1 MiB at a time, with their SHA-256."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left, 1 << 20)
        data = os.urandom(n)
        buffer[:n] = data
        self.digest.update(data)
        self.left -= n
        return n


async def test_a_file_larger_than_the_builds_memory_is_streamed_into_the_zip(
    client: httpx.AsyncClient, ctx: AppContext, storage_backend: str
) -> None:
    user = await register(client, "big@example.com")
    tokens = await login(client, "big@example.com")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    uid = uuid.UUID(user["id"])
    file_id = uuid.uuid4()
    key = f"files/{uid}/{file_id}"
    source = _Random(BIG)
    await ctx.storage.put(key, io.BufferedReader(source), "application/octet-stream")
    async with ctx.sessionmaker() as db:
        db.add(
            StoredFile(
                id=file_id,
                owner_id=uid,
                filename="big.bin",
                content_type="application/octet-stream",
                size_bytes=BIG,
                sha256=source.digest.hexdigest(),
                storage_key=key,
                created_at=ctx.clock.now(),
            )
        )
        await db.commit()
    export_id = (await client.post("/api/v1/users/me/exports", headers=auth)).json()["id"]

    tracemalloc.start()
    try:
        assert await build_pending_exports(job_context(ctx), ctx.storage) == 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if storage_backend == "local":
        assert peak < BIG // 4, f"the build held {peak} bytes at its peak"
    # On S3 the ZIP's upload (boto3's upload_fileobj) buffers up to 10 parts of 8 MiB
    # whatever the archive's size: a bound of its own, not the account's size.

    r = await client.get(f"/api/v1/users/me/exports/{export_id}/download", headers=auth)
    assert r.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    digest = hashlib.sha256()
    with zf.open(f"files/{file_id}_big.bin") as member:
        while chunk := member.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == source.digest.hexdigest()
