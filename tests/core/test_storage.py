"""The storage interface: the same suite runs against the local directory and the S3
backend (moto's S3 server, started by the tests)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from atrium.config import Settings, StorageSettings
from atrium.core.storage import LocalStorage, ObjectNotFound, Storage, check_key, create_storage
from tests.conftest import s3_settings


@pytest.fixture
async def storage(
    storage_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Storage]:
    if storage_backend == "s3":
        endpoint = request.getfixturevalue("s3_server")
        conf = s3_settings(endpoint, s3_presigned_downloads=True)
    else:
        conf = StorageSettings(local_dir=tmp_path / "objects")
    backend = create_storage(Settings(_env_file=None, data_dir=tmp_path, storage=conf))  # type: ignore[call-arg]
    yield backend
    await backend.close()


async def collect(storage: Storage, key: str) -> bytes:
    return b"".join([chunk async for chunk in storage.stream(key)])


async def test_put_then_get_returns_the_bytes(storage: Storage) -> None:
    await storage.put_bytes("a/b/c.bin", b"hello", "application/octet-stream")

    assert await storage.get_bytes("a/b/c.bin") == b"hello"
    assert await storage.exists("a/b/c.bin")


async def test_put_from_a_file_streams_it_in_chunks(storage: Storage) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: several chunks
    await storage.put("files/big", io.BytesIO(data), "application/octet-stream")

    assert await collect(storage, "files/big") == data


async def test_put_replaces_an_object(storage: Storage) -> None:
    await storage.put_bytes("k", b"one", "text/plain")
    await storage.put_bytes("k", b"two", "text/plain")

    assert await storage.get_bytes("k") == b"two"


async def test_missing_object_is_object_not_found(storage: Storage) -> None:
    assert not await storage.exists("nope")
    with pytest.raises(ObjectNotFound):
        await storage.get_bytes("nope")
    with pytest.raises(ObjectNotFound):
        await collect(storage, "nope")


async def test_delete_removes_objects_and_ignores_missing_ones(storage: Storage) -> None:
    await storage.put_bytes("x/1", b"1", "text/plain")
    await storage.put_bytes("x/2", b"2", "text/plain")

    await storage.delete("x/1", "x/2", "x/never-existed")

    assert not await storage.exists("x/1")
    assert not await storage.exists("x/2")


async def test_ping_succeeds_when_the_backend_is_reachable(storage: Storage) -> None:
    assert await storage.ping() is None  # raises when the backend is unreachable


async def test_presigned_url_downloads_with_the_disposition(storage: Storage) -> None:
    await storage.put_bytes("files/doc", b"%PDF-1.4 body", "application/pdf")

    url = await storage.presigned_url(
        "files/doc",
        content_disposition='attachment; filename="doc.pdf"',
        content_type="application/pdf",
    )

    if storage.name == "local":
        assert url is None
        return
    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"%PDF-1.4 body"
    assert response.headers["content-disposition"] == 'attachment; filename="doc.pdf"'


@pytest.mark.parametrize(
    "key", ["../etc/passwd", "/abs", "a/../b", "a//b", "", "a/.hidden/../x", "a b", "a\\b"]
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="invalid storage key"):
        check_key(key)


async def test_local_delete_removes_emptied_directories(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    await storage.put_bytes("avatars/u/v/64.webp", b"x", "image/webp")

    await storage.delete("avatars/u/v/64.webp")

    assert list((tmp_path / "root").iterdir()) == []


async def test_local_write_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    await storage.put_bytes("a/b", b"x" * 100_000, "application/octet-stream")

    assert [p.name for p in (tmp_path / "root" / "a").iterdir()] == ["b"]
