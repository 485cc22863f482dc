"""Object storage for avatars and files: one interface, two backends.

- :class:`LocalStorage` (embedded default): files under ``<data_dir>/storage``; writes go
  to a temporary file that is renamed into place, so a reader never sees half an object.
- :class:`S3Storage`: any S3-compatible store (AWS S3, MinIO, Ceph, moto in tests) through
  boto3, whose blocking calls run in a worker thread (``anyio.to_thread``); endpoint,
  bucket, region, credentials and path-style addressing are settings, and downloads can be
  answered with presigned GET URLs (AWS Signature Version 4 query authentication).

Keys are relative paths of ``[A-Za-z0-9._-]`` segments separated by ``/`` (for example
``avatars/<user id>/<hash>/256.webp``); anything else is refused before it reaches a
backend, so a key can never escape the storage directory or bucket prefix.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import anyio
import structlog

from atrium.config import Settings

_KEY_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*(/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$")
CHUNK_SIZE = 64 * 1024


log = structlog.get_logger(__name__)


class StorageError(Exception):
    """The storage backend failed or could not be reached."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""


def check_key(key: str) -> str:
    """``key`` if it is a safe relative object key, else ValueError (never user input)."""
    if len(key) > 512 or not _KEY_RE.match(key) or ".." in key.split("/"):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    """Stores bytes under keys. Every method may raise :class:`StorageError`."""

    name: str

    async def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        """Store the rest of the binary file ``data`` (read from its current position)."""
        ...

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get_bytes(self, key: str) -> bytes:
        """The whole object (for small objects such as avatars). ObjectNotFound if absent."""
        ...

    def stream(self, key: str) -> AsyncIterator[bytes]:
        """The object in chunks of at most 64 KiB. ObjectNotFound if absent."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, *keys: str) -> None:
        """Delete ``keys``; absent keys are ignored."""
        ...

    async def presigned_url(
        self, key: str, *, content_disposition: str, content_type: str
    ) -> str | None:
        """A time-limited download URL, or None when the backend does not offer one."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class LocalStorage:
    """Objects as files under ``root`` (created on first use)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write(self, key: str, data: BinaryIO) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(data, out, CHUNK_SIZE)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        try:
            await anyio.to_thread.run_sync(self._write, key, data)
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        import io

        await self.put(key, io.BytesIO(data), content_type)

    async def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return await anyio.to_thread.run_sync(path.read_bytes)
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await anyio.open_file(path, "rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        async with handle:
            while chunk := await handle.read(CHUNK_SIZE):
                yield chunk

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(key).is_file)

    def _delete(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            # Remove directories left empty, up to the root.
            parent = path.parent
            while parent != self.root and parent.is_relative_to(self.root):
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    async def delete(self, *keys: str) -> None:
        try:
            await anyio.to_thread.run_sync(self._delete, keys)
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    async def presigned_url(
        self, key: str, *, content_disposition: str, content_type: str
    ) -> str | None:
        return None

    async def ping(self) -> None:
        def check() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise StorageError(f"{self.root} is not writable")

        try:
            await anyio.to_thread.run_sync(check)
        except OSError as exc:
            raise StorageError(str(exc)) from exc

    async def close(self) -> None:
        return None


@functools.cache
def boto3_session() -> Any:
    """The process's one boto3 session, which the S3 clients are made from (at start-up,
    on one thread; the clients themselves are thread-safe). Each new session would read
    botocore's service descriptions from their JSON files again (~20 ms for S3)."""
    import boto3

    return boto3.session.Session()


class S3Storage:
    """Objects in an S3 bucket, through boto3 in worker threads."""

    name = "s3"

    def __init__(self, settings: Settings) -> None:
        from botocore.config import Config

        conf = settings.storage
        if not conf.s3_bucket:
            raise ValueError("ATRIUM_STORAGE__S3_BUCKET is required")
        self.bucket: str = conf.s3_bucket
        self.prefix = conf.s3_key_prefix
        self.presign = conf.s3_presigned_downloads
        self.presign_ttl = conf.s3_presign_ttl_seconds
        secret = conf.s3_secret_access_key
        self.client: Any = boto3_session().client(
            "s3",
            endpoint_url=conf.s3_endpoint_url,
            region_name=conf.s3_region,
            aws_access_key_id=conf.s3_access_key_id,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=Config(
                s3={"addressing_style": "path" if conf.s3_path_style else "auto"},
                signature_version="s3v4",
                connect_timeout=conf.s3_timeout_seconds,
                read_timeout=conf.s3_timeout_seconds,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _call(self, method: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        def run() -> Any:
            return getattr(self.client, method)(**kwargs)

        try:
            return await anyio.to_thread.run_sync(run)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectNotFound(kwargs.get("Key", "")) from exc
            raise StorageError(f"{method}: {code}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"{method}: {type(exc).__name__}") from exc

    async def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        def run() -> None:
            self.client.upload_fileobj(
                data, self.bucket, self._key(key), ExtraArgs={"ContentType": content_type}
            )

        try:
            await anyio.to_thread.run_sync(run)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"put: {type(exc).__name__}") from exc

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        await self._call(
            "put_object",
            Bucket=self.bucket,
            Key=self._key(key),
            Body=data,
            ContentType=content_type,
        )

    async def get_bytes(self, key: str) -> bytes:
        response = await self._call("get_object", Bucket=self.bucket, Key=self._key(key))
        body = response["Body"]
        try:
            data: bytes = await anyio.to_thread.run_sync(body.read)
        finally:
            body.close()
        return data

    async def stream(self, key: str) -> AsyncIterator[bytes]:
        response = await self._call("get_object", Bucket=self.bucket, Key=self._key(key))
        body = response["Body"]
        try:
            while chunk := await anyio.to_thread.run_sync(body.read, CHUNK_SIZE):
                yield chunk
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        try:
            await self._call("head_object", Bucket=self.bucket, Key=self._key(key))
        except ObjectNotFound:
            return False
        return True

    async def delete(self, *keys: str) -> None:
        # DeleteObjects takes at most 1000 keys per request.
        full = [self._key(k) for k in keys]
        for start in range(0, len(full), 1000):
            batch = full[start : start + 1000]
            result = await self._call(
                "delete_objects",
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            if result.get("Errors"):
                raise StorageError(f"delete: {len(result['Errors'])} objects not deleted")

    async def presigned_url(
        self, key: str, *, content_disposition: str, content_type: str
    ) -> str | None:
        if not self.presign:
            return None
        url: str = await anyio.to_thread.run_sync(
            lambda: self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": self._key(key),
                    "ResponseContentDisposition": content_disposition,
                    "ResponseContentType": content_type,
                },
                ExpiresIn=self.presign_ttl,
            )
        )
        return url

    async def ping(self) -> None:
        await self._call("head_bucket", Bucket=self.bucket)

    async def close(self) -> None:
        self.client.close()


def create_storage(settings: Settings) -> Storage:
    """S3 when ``storage.backend`` is ``s3``, otherwise the local directory."""
    if settings.storage.backend == "s3":
        return S3Storage(settings)
    return LocalStorage(settings.storage_dir)


async def delete_objects(storage: Storage, keys: list[str]) -> None:
    """Delete ``keys`` after the fact (from an ``after_commit`` hook); a failure is logged
    with the keys (``storage_delete_failed``, for an operator to remove them) instead of
    failing a request whose data is already committed."""
    try:
        await storage.delete(*keys)
    except StorageError as exc:
        log.error("storage_delete_failed", keys=keys, error=str(exc))
