"""Malware scanning through a ClamAV daemon (clamd) with the INSTREAM command.

Protocol (clamd(8), "INSTREAM"): send ``zINSTREAM\\0``, then the data as chunks each
prefixed by its length as a 4-byte unsigned big-endian integer, then a zero-length chunk;
clamd answers one NUL-terminated line: ``stream: OK``, ``stream: <signature> FOUND`` or
``... ERROR`` (for instance ``INSTREAM size limit exceeded``, StreamMaxLength).

Scanning fails closed: if clamd is configured but cannot be reached or answers an error,
the upload is refused with 503 rather than stored unscanned.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

import anyio

CHUNK = 64 * 1024


class ScanError(Exception):
    """clamd could not be reached, timed out, or answered an error."""


@dataclass(frozen=True)
class ScanResult:
    clean: bool
    signature: str | None = None


async def scan_stream(data: BinaryIO, *, host: str, port: int, seconds: float) -> ScanResult:
    """Scan the rest of ``data`` with clamd at ``host:port``.

    Raises:
        ScanError: connection, time-out or a clamd ``ERROR`` answer.
    """
    try:
        with anyio.fail_after(seconds):
            async with await anyio.connect_tcp(host, port) as stream:
                await stream.send(b"zINSTREAM\0")
                while chunk := await anyio.to_thread.run_sync(data.read, CHUNK):
                    await stream.send(struct.pack("!I", len(chunk)) + chunk)
                await stream.send(struct.pack("!I", 0))
                reply = b""
                while not reply.endswith(b"\0"):
                    try:
                        reply += await stream.receive()
                    except anyio.EndOfStream:
                        break
    except (OSError, TimeoutError, anyio.BrokenResourceError) as exc:
        raise ScanError(type(exc).__name__) from exc
    answer = reply.rstrip(b"\0").decode("utf-8", "replace").strip()
    if answer.endswith("OK"):
        return ScanResult(clean=True)
    if answer.endswith("FOUND"):
        signature = answer.removeprefix("stream:").removesuffix("FOUND").strip()
        return ScanResult(clean=False, signature=signature or "unknown")
    raise ScanError(answer or "empty reply")
