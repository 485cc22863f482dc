"""A small, protocol-faithful clamd for tests: INSTREAM over TCP.

ClamAV's signature database cannot be downloaded in the test environment, so this server
speaks clamd's INSTREAM protocol (``zINSTREAM\\0``, 4-byte big-endian length-prefixed
chunks, a zero-length terminator, one NUL-terminated reply) and reports the EICAR test
string as ``Win.Test.EICAR_HDB-1 FOUND``, as clamd does; everything else is ``OK``.
It enforces a StreamMaxLength like clamd (``INSTREAM size limit exceeded. ERROR``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class FakeClamd:
    def __init__(self, *, stream_max_length: int = 25 * 1024 * 1024) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port: int = self.sock.getsockname()[1]
        self.stream_max_length = stream_max_length
        self.scanned: list[bytes] = []
        self.commands: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FakeClamd:
        self._thread.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        # Closing alone would not wake the thread blocked in accept(): shut down first.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self._handle(conn)

    @staticmethod
    def _recv_exact(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            part = conn.recv(n - len(data))
            if not part:
                raise ConnectionError("client went away")
            data += part
        return data

    def _handle(self, conn: socket.socket) -> None:
        command = b""
        while not command.endswith(b"\0"):
            command += self._recv_exact(conn, 1)
        self.commands.append(command)
        if command != b"zINSTREAM\0":
            conn.sendall(b"UNKNOWN COMMAND\0")
            return
        data = b""
        while True:
            (length,) = struct.unpack("!I", self._recv_exact(conn, 4))
            if length == 0:
                break
            data += self._recv_exact(conn, length)
            if len(data) > self.stream_max_length:
                conn.sendall(b"INSTREAM size limit exceeded. ERROR\0")
                return
        self.scanned.append(data)
        if EICAR in data:
            conn.sendall(b"stream: Win.Test.EICAR_HDB-1 FOUND\0")
        else:
            conn.sendall(b"stream: OK\0")
