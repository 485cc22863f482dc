"""Restore drill: deploy/backup/backup.sh and restore.sh against a real Atrium server on
PostgreSQL. Seed a database, back it up (encrypted), lose the database, the files and the
signing key, restore into a new database, and check that the same accounts log in with the
same passwords, tokens issued before the backup still verify, and files still download."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_URL
from tests.deploy.conftest import DEPLOY, need, slow_check
from tests.images import image_bytes
from tests.readiness import wait_until_ready

ATRIUM = str(Path(sys.executable).with_name("atrium"))
BACKUP = DEPLOY / "backup" / "backup.sh"
RESTORE = DEPLOY / "backup" / "restore.sh"
PASSWORDS = {
    "ada@example.com": "correct horse battery staple",
    "grace@example.com": "another long passphrase",
}


def _admin(sql: str) -> None:
    assert PG_URL is not None

    async def run() -> None:
        engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two database URLs: the one that is lost, and the empty one restored into."""
    slow_check()
    if PG_URL is None:
        pytest.fail("the restore drill needs ATRIUM_TEST_DATABASE_URL (PostgreSQL)")
    names = [f"atrium_drill_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        _admin(f'CREATE DATABASE "{name}"')
    urls = [make_url(PG_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    yield urls[0], urls[1]
    for name in names:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _age_identity(tmp_path: Path) -> tuple[Path, str]:
    keygen = need("age-keygen", "age")
    identity = tmp_path / "backup-identity.txt"
    subprocess.run([keygen, "-o", str(identity)], check=True, capture_output=True)
    recipient = next(
        line.split(": ", 1)[1]
        for line in identity.read_text().splitlines()
        if line.startswith("# public key: ")
    )
    return identity, recipient


class Server:
    """``atrium serve`` as a real process on a free port, until ``stop()``."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        folder.mkdir(parents=True, exist_ok=True)
        self.log_path = folder / "server.log"
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [ATRIUM, "serve", "--port", str(port)],
            env={k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
            | {
                "ATRIUM_DATA_DIR": str(folder / "var"),
                "ATRIUM_AUTH__ARGON2_MEMORY_COST_KIB": "1024",
                "ATRIUM_AUTH__ARGON2_TIME_COST": "1",
            }
            | env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
        self.base = f"http://127.0.0.1:{port}"
        # Generous: the drill runs on shared CI machines.
        if wait_until_ready(self.base, self.proc, 180):
            return
        self.stop()
        raise AssertionError("server did not become ready:\n" + self.log_path.read_text())

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        finally:
            self.log.close()


def _server_env(database_url: str, storage: Path, signing_key: Path) -> dict[str, str]:
    return {
        "ATRIUM_DATABASE__URL": database_url,
        "ATRIUM_STORAGE__LOCAL_DIR": str(storage),
        "ATRIUM_AUTH__SIGNING_KEY_FILE": str(signing_key),
    }


def _backup(env: dict[str, str]) -> Path:
    result = subprocess.run(
        ["bash", str(BACKUP)], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def _restore(identity: Path, url: str, storage: Path, keys: Path, backup: Path) -> Any:
    options = ["-i", str(identity), "-d", url, "-s", str(storage), "-k", str(keys)]
    return subprocess.run(
        ["bash", str(RESTORE), *options, str(backup)],
        capture_output=True,
        text=True,
    )


def test_restore_drill(databases: tuple[str, str], tmp_path: Path) -> None:
    need("pg_dump", "postgresql-client")
    need("pg_restore", "postgresql-client")
    need("age", "age")
    lost_url, new_url = databases
    identity, recipient = _age_identity(tmp_path)
    signing_key = tmp_path / "live" / "signing_key.pem"
    signing_key.parent.mkdir()
    signing_key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    storage = tmp_path / "live" / "storage"
    live_env = _server_env(lost_url, storage, signing_key)

    # --- seed: accounts, sessions, a file -------------------------------------------------
    live = Server(tmp_path / "live", live_env)
    tokens: dict[str, dict[str, Any]] = {}
    picture = image_bytes("PNG", (40, 30))
    try:
        with httpx.Client(base_url=live.base, timeout=30) as http:
            for email, password in PASSWORDS.items():
                assert (
                    http.post(
                        "/api/v1/auth/register", json={"email": email, "password": password}
                    ).status_code
                    == 201
                )
                login = http.post(
                    "/api/v1/auth/login", data={"username": email, "password": password}
                )
                assert login.status_code == 200, login.text
                tokens[email] = login.json()
            ada = {"Authorization": f"Bearer {tokens['ada@example.com']['access_token']}"}
            upload = http.post(
                "/api/v1/files", files={"file": ("map.png", picture, "image/png")}, headers=ada
            )
            assert upload.status_code == 201, upload.text
            file_id = upload.json()["id"]

        # --- back up three times, keeping two ---------------------------------------------
        backup_env = {
            **live_env,
            "BACKUP_DIR": str(tmp_path / "backups"),
            "BACKUP_RECIPIENT": recipient,
            "BACKUP_KEEP": "2",
        }
        made = [_backup(backup_env) for _ in range(3)]
    finally:
        live.stop()

    kept = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert kept == sorted(p.name for p in made[1:])
    latest = made[-1]
    sealed = latest.read_bytes()
    assert sealed.startswith(b"age-encryption.org/v1")
    assert b"PGDMP" not in sealed
    assert b"ada@example.com" not in sealed
    assert b"PRIVATE KEY" not in sealed

    # --- disaster: the database, the files and the key are gone --------------------------
    _admin(f'DROP DATABASE "{make_url(lost_url).database}" WITH (FORCE)')
    shutil.rmtree(tmp_path / "live")

    # A wrong identity restores nothing.
    (tmp_path / "stranger").mkdir()
    stranger, _ = _age_identity(tmp_path / "stranger")
    refused = _restore(stranger, new_url, tmp_path / "x-storage", tmp_path / "x-keys", latest)
    assert refused.returncode != 0
    assert not (tmp_path / "x-keys").exists()

    restored_storage = tmp_path / "restored" / "storage"
    restored_keys = tmp_path / "restored" / "keys"
    result = _restore(identity, new_url, restored_storage, restored_keys, latest)
    assert result.returncode == 0, result.stderr
    assert "restored: database 2 accounts" in result.stdout

    # Restoring over a database that is no longer empty is refused.
    again = _restore(identity, new_url, tmp_path / "y-storage", tmp_path / "y-keys", latest)
    assert again.returncode != 0
    assert "not empty" in again.stderr

    # --- the restored service ------------------------------------------------------------
    restored = Server(
        tmp_path / "restored",
        _server_env(new_url, restored_storage, restored_keys / "signing_key.pem"),
    )
    try:
        with httpx.Client(base_url=restored.base, timeout=30) as http:
            for email, password in PASSWORDS.items():
                login = http.post(
                    "/api/v1/auth/login", data={"username": email, "password": password}
                )
                assert login.status_code == 200, (email, login.text)
                wrong = http.post(
                    "/api/v1/auth/login", data={"username": email, "password": password + "x"}
                )
                assert wrong.status_code == 401
            # Access tokens signed before the backup verify with the restored key.
            for email, issued in tokens.items():
                me = http.get(
                    "/api/v1/users/me",
                    headers={"Authorization": f"Bearer {issued['access_token']}"},
                )
                assert me.status_code == 200, me.text
                assert me.json()["email"] == email
            # Refresh tokens (stored hashed in the database) still work.
            refreshed = http.post(
                "/api/v1/auth/refresh",
                json={"refresh_token": tokens["grace@example.com"]["refresh_token"]},
            )
            assert refreshed.status_code == 200, refreshed.text
            download = http.get(f"/api/v1/files/{file_id}/content", headers=ada)
            assert download.status_code == 200, download.text
            assert download.content == picture
    finally:
        restored.stop()
