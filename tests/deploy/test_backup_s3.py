"""Backups of a deployment whose files live in an S3 bucket: backup.sh copies the bucket
with rclone (against moto's S3 server here), restore.sh gives the objects back byte for
byte, and the documented `rclone copy` puts them into a new bucket."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import make_url

from atrium.core.storage import boto3_session
from tests.conftest import PG_URL
from tests.deploy.conftest import DEPLOY, need, slow_check
from tests.deploy.test_restore_drill import ATRIUM, _admin, _age_identity, _restore

BACKUP = DEPLOY / "backup" / "backup.sh"
OBJECTS = {
    "avatars/0b/ada-128.webp": b"RIFF....WEBPVP8 avatar bytes",
    "files/3f/report.pdf": b"%PDF-1.7 a report\x00\x01\x02",
    "files/3f/nested/deep/notes.txt": "notes in UTF-8: ñ, ü, 漢字".encode(),
}


def _s3(endpoint: str) -> object:
    return boto3_session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def two_databases() -> Iterator[tuple[str, str]]:
    slow_check()
    if PG_URL is None:
        pytest.fail("the S3 backup check needs ATRIUM_TEST_DATABASE_URL (PostgreSQL)")
    names = [f"atrium_s3bk_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for name in names:
        _admin(f'CREATE DATABASE "{name}"')
    urls = [make_url(PG_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    yield urls[0], urls[1]
    for name in names:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_s3_bucket_is_backed_up_and_restored(
    two_databases: tuple[str, str], s3_server: str, tmp_path: Path
) -> None:
    rclone = need("rclone", "rclone")
    need("pg_dump", "postgresql-client")
    need("age", "age")
    live_url, new_url = two_databases
    client = _s3(s3_server)
    bucket = f"atrium-live-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)  # type: ignore[attr-defined]
    for key, body in OBJECTS.items():
        client.put_object(Bucket=bucket, Key=f"prod/{key}", Body=body)  # type: ignore[attr-defined]
    # An object outside the deployment's key prefix is not part of its backup.
    client.put_object(Bucket=bucket, Key="other-app/secret.txt", Body=b"not ours")  # type: ignore[attr-defined]

    key_file = tmp_path / "signing_key.pem"
    key_file.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    identity, recipient = _age_identity(tmp_path)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")},
        "ATRIUM_DATABASE__URL": live_url,
        "ATRIUM_AUTH__SIGNING_KEY_FILE": str(key_file),
        "ATRIUM_STORAGE__BACKEND": "s3",
        "ATRIUM_STORAGE__S3_ENDPOINT_URL": s3_server,
        "ATRIUM_STORAGE__S3_BUCKET": bucket,
        "ATRIUM_STORAGE__S3_KEY_PREFIX": "prod",
        "ATRIUM_STORAGE__S3_ACCESS_KEY_ID": "testing",
        "ATRIUM_STORAGE__S3_SECRET_ACCESS_KEY": "testing",
        "ATRIUM_STORAGE__S3_PATH_STYLE": "true",
        "BACKUP_DIR": str(tmp_path / "backups"),
        "BACKUP_RECIPIENT": recipient,
    }
    migrated = subprocess.run([ATRIUM, "migrate"], env=env, capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    made = subprocess.run(["bash", str(BACKUP)], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    backup = Path(made.stdout.strip().splitlines()[-1])
    sealed = backup.read_bytes()
    assert sealed.startswith(b"age-encryption.org/v1")
    assert b"a report" not in sealed

    storage = tmp_path / "restored" / "storage"
    restored = _restore(identity, new_url, storage, tmp_path / "restored" / "keys", backup)
    assert restored.returncode == 0, restored.stderr
    found = {str(p.relative_to(storage)): p.read_bytes() for p in storage.rglob("*") if p.is_file()}
    assert found == OBJECTS

    # docs: "For S3, upload it after: rclone copy STORAGE_DIR remote:bucket".
    target = f"atrium-restored-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=target)  # type: ignore[attr-defined]
    remote = {
        "RCLONE_CONFIG_NEW_TYPE": "s3",
        "RCLONE_CONFIG_NEW_PROVIDER": "Other",
        "RCLONE_CONFIG_NEW_ACCESS_KEY_ID": "testing",
        "RCLONE_CONFIG_NEW_SECRET_ACCESS_KEY": "testing",
        "RCLONE_CONFIG_NEW_ENDPOINT": s3_server,
        "RCLONE_CONFIG_NEW_FORCE_PATH_STYLE": "true",
    }
    upload = subprocess.run(
        [rclone, "copy", str(storage), f"new:{target}/prod"],
        env={k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"} | remote,
        capture_output=True,
        text=True,
    )
    assert upload.returncode == 0, upload.stderr
    listing = client.list_objects_v2(Bucket=target)  # type: ignore[attr-defined]
    keys = sorted(item["Key"] for item in listing.get("Contents", []))
    assert keys == sorted(f"prod/{k}" for k in OBJECTS)
    body = client.get_object(Bucket=target, Key="prod/files/3f/report.pdf")["Body"].read()  # type: ignore[attr-defined]
    assert body == OBJECTS["files/3f/report.pdf"]
