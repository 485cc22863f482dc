#!/usr/bin/env sh
# Write the secrets of deploy/compose.yaml into deploy/secrets/ (once; existing files are
# kept, so the signing key and passwords survive `make up` runs).
set -eu
dir=${ATRIUM_SECRETS_DIR:-$(dirname "$0")/../secrets}
mkdir -p "$dir"
chmod 0700 "$dir"
umask 077
rand() { openssl rand -hex 24; }
[ -s "$dir/postgres_password" ] || rand > "$dir/postgres_password"
[ -s "$dir/minio_password" ] || rand > "$dir/minio_password"
[ -s "$dir/metrics_token" ] || rand > "$dir/metrics_token"
[ -s "$dir/api_key_secret" ] || rand > "$dir/api_key_secret"
[ -s "$dir/signing_key.pem" ] || openssl genpkey -algorithm ed25519 -out "$dir/signing_key.pem"
printf 'postgresql+asyncpg://atrium:%s@postgres:5432/atrium' "$(cat "$dir/postgres_password")" \
  > "$dir/database_url"
# The containers run as other users (Atrium as uid 10001, PostgreSQL as 999): the files
# are readable, the folder is not (bind mounts do not need it).
chmod 0644 "$dir"/*
chmod 0700 "$dir"  # the files are bind-mounted: only the containers need to read them
echo "secrets in $dir"
