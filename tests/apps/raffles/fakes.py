"""Peers that cannot run here, faked on loopback: a drand beacon (its HTTP API)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from atrium.apps.raffles.settings import QUICKNET_CHAIN_HASH


class FakeDrand:
    """drand's ``GET /{chain hash}/public/{round}``: rounds up to ``latest`` are out
    (``randomness = SHA-256(signature)``, as on quicknet); later ones answer 425."""

    def __init__(self) -> None:
        self.latest = 0
        self.requests: list[str] = []
        self.chain_hash = QUICKNET_CHAIN_HASH
        self.url = ""

    @staticmethod
    def signature(round_: int) -> bytes:
        seed = round_.to_bytes(8, "big")
        return (hashlib.sha256(b"a" + seed).digest() + hashlib.sha256(b"b" + seed).digest())[:48]

    def value(self, round_: int) -> bytes:
        return hashlib.sha256(self.signature(round_)).digest()

    def answer(self, path: str) -> tuple[int, dict[str, object]]:
        self.requests.append(path)
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != self.chain_hash or parts[1] != "public":
            return 404, {"error": "not found"}
        round_ = int(parts[2])
        if round_ > self.latest:
            return 425, {"error": "too early"}
        signature = self.signature(round_)
        return 200, {
            "round": round_,
            "randomness": hashlib.sha256(signature).hexdigest(),
            "signature": signature.hex(),
        }


@contextmanager
def fake_drand() -> Iterator[FakeDrand]:
    fake = FakeDrand()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = fake.answer(self.path)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll: shutdown() waits for the loop's next poll (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
