#!/usr/bin/env bash
# Restore a backup made by backup.sh into a NEW, empty database, storage folder and keys
# folder (never over the live ones: point Atrium at the restored copies when they check out).
#
# Usage: restore.sh -i IDENTITY -d DATABASE_URL -s STORAGE_DIR -k KEYS_DIR BACKUP.tar.age
#   -i  age identity file (the private key matching the backup's recipient)
#   -d  PostgreSQL URL of an existing, empty database (postgresql:// or postgresql+asyncpg://)
#   -s  folder for the files and avatars (created; must be empty). For S3, upload it after:
#       rclone copy STORAGE_DIR remote:bucket
#   -k  folder for the signing and verification keys (created, mode 0700)
# Then start Atrium with ATRIUM_DATABASE__URL, ATRIUM_STORAGE__LOCAL_DIR (or the bucket)
# and ATRIUM_AUTH__SIGNING_KEY_FILE=KEYS_DIR/signing_key.pem; `atrium migrate` brings an
# older backup up to the current schema.
set -euo pipefail
umask 077

die() { echo "restore: $*" >&2; exit 1; }
identity= db= storage= keys=
while getopts "i:d:s:k:" opt; do
  case $opt in
    i) identity=$OPTARG ;; d) db=$OPTARG ;; s) storage=$OPTARG ;; k) keys=$OPTARG ;;
    *) die "usage: restore.sh -i IDENTITY -d DATABASE_URL -s STORAGE_DIR -k KEYS_DIR BACKUP" ;;
  esac
done
shift $((OPTIND - 1))
backup=${1:-}
[ -n "$identity" ] && [ -n "$db" ] && [ -n "$storage" ] && [ -n "$keys" ] && [ -r "$backup" ] \
  || die "usage: restore.sh -i IDENTITY -d DATABASE_URL -s STORAGE_DIR -k KEYS_DIR BACKUP"
for tool in age pg_restore psql sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
db=${db/postgresql+asyncpg:/postgresql:}

tables=$(psql "$db" -Atc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") \
  || die "cannot connect to $db (create the database first)"
[ "$tables" = 0 ] || die "the target database is not empty ($tables tables)"
if [ -d "$storage" ] && [ -n "$(ls -A "$storage")" ]; then die "$storage is not empty"; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/atrium-restore.XXXXXX")
trap 'rm -rf "$work"' EXIT
age --decrypt --identity "$identity" "$backup" | tar --extract --directory="$work" \
  || die "cannot decrypt $backup with $identity"

# Every part is checked against the manifest before anything is restored.
python3 - "$work" <<'PY' || die "the backup does not match its manifest"
import hashlib, json, pathlib, sys
root = pathlib.Path(sys.argv[1])
manifest = json.loads((root / "manifest.json").read_text())
for name, digest in manifest["sha256"].items():
    if hashlib.sha256((root / name).read_bytes()).hexdigest() != digest:
        sys.exit(f"{name}: checksum mismatch")
print(f"backup of {manifest['created']}, schema revision {manifest['alembic_revision']}")
PY

pg_restore --exit-on-error --no-owner --no-privileges --single-transaction \
           --dbname="$db" "$work/database.dump"
mkdir -p "$storage"
tar --extract --file="$work/storage.tar" --directory="$storage"
mkdir -p "$keys"
chmod 0700 "$keys"
cp "$work"/keys/*.pem "$keys"/
chmod 0600 "$keys"/*.pem
echo "restored: database $(psql "$db" -Atc 'SELECT count(*) FROM user_account') accounts," \
     "$(find "$storage" -type f | wc -l) stored objects, keys in $keys"
