#!/usr/bin/env bash
# Back up an Atrium deployment into one encrypted file:
#   database.dump   pg_dump custom format (restore with restore.sh or pg_restore)
#   storage.tar     the local storage folder (avatars, files), or the S3 bucket via rclone
#   keys/           the signing key and verification keys (without them, issued access
#                   tokens stop verifying)
#   manifest.json   time, schema revision, SHA-256 of each part
# encrypted with age (https://age-encryption.org, Debian package `age`) to a recipient's
# public key: the machine that makes backups cannot read them; keep the identity (private
# key) offline. Keeps the newest BACKUP_KEEP backups and deletes older ones.
#
# Reads Atrium's own settings (the same environment as `atrium serve`):
#   ATRIUM_DATABASE__URL (postgresql+asyncpg://...; BACKUP_PG_URL overrides it)
#   ATRIUM_DATA_DIR, ATRIUM_STORAGE__BACKEND, ATRIUM_STORAGE__LOCAL_DIR, ATRIUM_STORAGE__S3_*
#   ATRIUM_AUTH__SIGNING_KEY_FILE, ATRIUM_AUTH__VERIFICATION_KEY_FILES (JSON list)
# and its own (not ATRIUM_*: in production Atrium refuses ATRIUM_ variables it does not
# know, and this script may share the service's environment file):
#   BACKUP_DIR        where backups go (default /var/backups/atrium)
#   BACKUP_RECIPIENT  age public key (age1...), or BACKUP_RECIPIENTS_FILE
#   BACKUP_KEEP       how many backups to keep (default 14)
#
# Usage: backup.sh            prints the path of the new backup
set -euo pipefail
umask 077

die() { echo "backup: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 is not installed ($2)"; }
need pg_dump "apt-get install postgresql-client"
need age "apt-get install age"

dest=${BACKUP_DIR:-/var/backups/atrium}
keep=${BACKUP_KEEP:-14}
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || die "BACKUP_KEEP must be a positive number"
recipients=()
[ -n "${BACKUP_RECIPIENT:-}" ] && recipients+=(-r "$BACKUP_RECIPIENT")
[ -n "${BACKUP_RECIPIENTS_FILE:-}" ] && recipients+=(-R "$BACKUP_RECIPIENTS_FILE")
[ ${#recipients[@]} -gt 0 ] || die "set BACKUP_RECIPIENT (age public key) or BACKUP_RECIPIENTS_FILE"

pg_url=${BACKUP_PG_URL:-${ATRIUM_DATABASE__URL:-}}
[ -n "$pg_url" ] || die "set ATRIUM_DATABASE__URL (or BACKUP_PG_URL)"
pg_url=${pg_url/postgresql+asyncpg:/postgresql:}
[[ "$pg_url" == postgresql://* ]] || die "only PostgreSQL is backed up by this script (SQLite: copy ATRIUM_DATA_DIR while the service is stopped)"

data_dir=${ATRIUM_DATA_DIR:-var}
backend=${ATRIUM_STORAGE__BACKEND:-local}
storage_dir=${ATRIUM_STORAGE__LOCAL_DIR:-$data_dir/storage}
signing_key=${ATRIUM_AUTH__SIGNING_KEY_FILE:-$data_dir/signing_key.pem}

stamp=$(date -u +%Y%m%dT%H%M%S%3NZ)
work=$(mktemp -d "${TMPDIR:-/tmp}/atrium-backup.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts/keys" "$dest"

# 1. Database: one consistent snapshot (pg_dump runs in a single repeatable-read transaction).
pg_dump --format=custom --compress=6 --no-owner --no-privileges \
        --file="$work/parts/database.dump" "$pg_url"
revision=$(psql "$pg_url" -Atc "SELECT version_num FROM alembic_version" 2>/dev/null || echo unknown)

# 2. Storage. Files are written before the row that points at them is committed, and
#    deleted after: a copy taken after the dump holds every file the dump refers to.
case "$backend" in
  local)
    [ -d "$storage_dir" ] || mkdir -p "$storage_dir"
    tar --create --file="$work/parts/storage.tar" --directory="$storage_dir" .
    ;;
  s3)
    need rclone "apt-get install rclone"
    export RCLONE_CONFIG_ATRIUMS3_TYPE=s3 RCLONE_CONFIG_ATRIUMS3_PROVIDER=Other \
           RCLONE_CONFIG_ATRIUMS3_ACCESS_KEY_ID="${ATRIUM_STORAGE__S3_ACCESS_KEY_ID:-}" \
           RCLONE_CONFIG_ATRIUMS3_SECRET_ACCESS_KEY="${ATRIUM_STORAGE__S3_SECRET_ACCESS_KEY:-}" \
           RCLONE_CONFIG_ATRIUMS3_REGION="${ATRIUM_STORAGE__S3_REGION:-us-east-1}" \
           RCLONE_CONFIG_ATRIUMS3_ENDPOINT="${ATRIUM_STORAGE__S3_ENDPOINT_URL:-}" \
           RCLONE_CONFIG_ATRIUMS3_FORCE_PATH_STYLE="${ATRIUM_STORAGE__S3_PATH_STYLE:-false}"
    mkdir -p "$work/bucket"
    # rclone (1.60, Debian 12) cannot start its S3 client when AWS_CA_BUNDLE is set ("failed
    # to load custom CA bundle"): hand the bundle over as --ca-cert instead.
    ca=()
    [ -n "${AWS_CA_BUNDLE:-}" ] && ca=(--ca-cert "$AWS_CA_BUNDLE")
    env -u AWS_CA_BUNDLE rclone "${ca[@]}" copy --quiet "atriums3:${ATRIUM_STORAGE__S3_BUCKET:?}/${ATRIUM_STORAGE__S3_KEY_PREFIX:-}" "$work/bucket"
    tar --create --file="$work/parts/storage.tar" --directory="$work/bucket" .
    ;;
  *) die "unknown ATRIUM_STORAGE__BACKEND=$backend" ;;
esac

# 3. Keys.
if [ -n "${ATRIUM_AUTH__SIGNING_KEY:-}" ]; then
  printf '%s\n' "$ATRIUM_AUTH__SIGNING_KEY" > "$work/parts/keys/signing_key.pem"
elif [ -r "$signing_key" ]; then
  cp "$signing_key" "$work/parts/keys/signing_key.pem"
else
  die "the signing key $signing_key cannot be read"
fi
if [ -n "${ATRIUM_AUTH__VERIFICATION_KEY_FILES:-}" ]; then
  i=0
  while IFS= read -r file; do
    [ -n "$file" ] || continue
    cp "$file" "$work/parts/keys/verification_key_$i.pem"
    i=$((i + 1))
  done < <(python3 -c 'import json, sys; print("\n".join(json.loads(sys.argv[1])))' \
             "$ATRIUM_AUTH__VERIFICATION_KEY_FILES")
fi

# 4. Manifest, then one tar encrypted on its way to disk (no plaintext copy at $dest).
(cd "$work/parts" && find . -type f ! -name manifest.json -print0 | sort -z | xargs -0 sha256sum) \
  > "$work/sha256"
python3 - "$work/parts/manifest.json" "$stamp" "$revision" "$backend" "$work/sha256" <<'PY'
import json, sys
path, stamp, revision, backend, sums = sys.argv[1:]
files = {}
for line in open(sums):
    digest, name = line.split(maxsplit=1)
    files[name.strip().removeprefix("./")] = digest
json.dump({"format": 1, "created": stamp, "alembic_revision": revision,
           "storage_backend": backend, "sha256": files}, open(path, "w"), indent=2)
PY
out="$dest/atrium-$stamp.tar.age"
tar --create --directory="$work/parts" . | age --encrypt "${recipients[@]}" --output "$out.part"
mv "$out.part" "$out"

# 5. Retention: keep the newest $keep backups (names sort by time).
mapfile -t all < <(find "$dest" -maxdepth 1 -name 'atrium-*.tar.age' -printf '%f\n' | sort)
if [ ${#all[@]} -gt "$keep" ]; then
  for old in "${all[@]:0:${#all[@]}-keep}"; do
    rm -f -- "$dest/$old"
  done
fi
echo "$out"
