#!/usr/bin/env bash
# Build the Atrium image on the debootstrapped base and run it against this machine's
# PostgreSQL (a database of its own) and Redis (a key prefix of its own), in production
# mode with secrets mounted as files and a real SMTP server (aiosmtpd):
#   migrate -> serve (ready, healthcheck, register, log in) -> worker (sends the email).
# Prints the image size and the start-up time (container start to /health/ready = 200).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
setup_podman
"$DEPLOY_TEST_DIR/build_base.sh"

run_id=$(date +%s)-$$
db=atrium_image_${run_id//-/_}
prefix="atrium-image-test:$run_id:"
work=$(mktemp -d)
api=atrium-api-$run_id
worker=atrium-worker-$run_id
smtp_pid=
cleanup() {
  "${PODMAN[@]}" rm -f "$api" "$worker" >/dev/null 2>&1 || true
  "${PODMAN[@]}" secret rm "atrium-signing-$run_id" "atrium-dburl-$run_id" >/dev/null 2>&1 || true
  [ -n "$smtp_pid" ] && kill "$smtp_pid" 2>/dev/null || true
  drop_database "$db"
  redis-cli -h 127.0.0.1 --scan --pattern "${prefix}*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

log "podman build $IMAGE (base $BASE_IMAGE)"
t0=$SECONDS
ca_args=()
# This machine's outbound HTTPS goes through a proxy whose CA is in the system bundle.
[ -s /etc/ssl/certs/ca-certificates.crt ] && ca_args=(--secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt)
# --format docker: the OCI image format has no HEALTHCHECK.
"${PODMAN[@]}" build --format docker --network host "${ca_args[@]}" \
  --build-arg BASE_IMAGE="$BASE_IMAGE" \
  --build-arg REVISION="$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
  --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$IMAGE" -f "$REPO_ROOT/Dockerfile" "$REPO_ROOT" >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log"; exit 1; }
build_seconds=$((SECONDS - t0))
size=$("${PODMAN[@]}" image inspect -f '{{.Size}}' "$IMAGE")
log "built in ${build_seconds}s, $((size / 1000000)) MB"

# --- the image itself ----------------------------------------------------------------------
uid=$("${PODMAN[@]}" run --rm --network host "$IMAGE" python3 -c 'import os; print(os.getuid())')
[ "$uid" = 10001 ] || { log "runs as uid $uid, not 10001"; exit 1; }
if "${PODMAN[@]}" run --rm --network host "$IMAGE" python3 -c 'import pytest' 2>/dev/null; then
  log "development packages (pytest) are in the image"; exit 1
fi
version=$("${PODMAN[@]}" run --rm --network host "$IMAGE" --version)
label=$("${PODMAN[@]}" image inspect -f '{{index .Labels "org.opencontainers.image.version"}}' "$IMAGE")
[ "$version" = "atrium $label" ] || { log "version '$version' vs label '$label'"; exit 1; }
volumes=$("${PODMAN[@]}" image inspect -f '{{json .Config.Volumes}}' "$IMAGE")
[[ "$volumes" == *'"/data"'* ]] || { log "no /data volume: $volumes"; exit 1; }

# --- dependencies: a database, a Redis prefix, an SMTP server, secrets -------------------
create_database "$db"
openssl genpkey -algorithm ed25519 -out "$work/signing_key.pem" 2>/dev/null
printf 'postgresql+asyncpg://postgres@127.0.0.1:5432/%s' "$db" > "$work/database_url"
"${PODMAN[@]}" secret create "atrium-signing-$run_id" "$work/signing_key.pem" >/dev/null
"${PODMAN[@]}" secret create "atrium-dburl-$run_id" "$work/database_url" >/dev/null
smtp_port=$(free_port)
(cd "$REPO_ROOT" && exec uv run --frozen python -m aiosmtpd -n -d -c aiosmtpd.handlers.Debugging \
   -l "127.0.0.1:$smtp_port") >"$work/smtp.log" 2>&1 &
smtp_pid=$!
port=$(free_port)
common=(
  --network host
  --secret "atrium-signing-$run_id,type=mount,target=/run/secrets/signing_key,uid=10001,mode=0400"
  --secret "atrium-dburl-$run_id,type=mount,target=/run/secrets/database_url,uid=10001,mode=0400"
  -e ATRIUM_ENVIRONMENT=production
  -e ATRIUM_AUTH__SIGNING_KEY_FILE=/run/secrets/signing_key
  -e ATRIUM_DATABASE__URL_FILE=/run/secrets/database_url
  -e ATRIUM_DATABASE__AUTO_MIGRATE=false
  -e ATRIUM_REDIS__URL=redis://127.0.0.1:6379/0
  -e ATRIUM_REDIS__KEY_PREFIX="$prefix"
  -e ATRIUM_MAIL__SMTP_HOST=127.0.0.1
  -e ATRIUM_MAIL__SMTP_PORT="$smtp_port"
  -e ATRIUM_MAIL__SMTP_SECURITY=none
  -e ATRIUM_MAIL__WORKER_IN_API=false
  -e ATRIUM_MAIL__LINK_BASE_URL=https://id.example.com
  -e ATRIUM_MAIL__FROM_ADDRESS="Atrium <no-reply@example.com>"
  -e ATRIUM_METRICS__TOKEN=image-test-metrics-token
  -e ATRIUM_API_KEYS__HMAC_SECRET=image-test-api-key-secret
  -e HEALTHCHECK_URL="http://127.0.0.1:$port/health/live"
)

log "atrium migrate"
"${PODMAN[@]}" run --rm "${common[@]}" "$IMAGE" migrate
tables=$(psql "$(pg_admin_url)/$db" -Atc "SELECT count(*) FROM alembic_version")
[ "$tables" = 1 ] || { log "migrate left no alembic_version row"; exit 1; }

log "atrium serve on :$port"
t0=$(date +%s.%N)
"${PODMAN[@]}" run -d --name "$api" "${common[@]}" "$IMAGE" serve --host 127.0.0.1 --port "$port" >/dev/null
base="http://127.0.0.1:$port"
wait_http "$base/health/ready" 120 || { "${PODMAN[@]}" logs "$api" | tail -n 40; exit 1; }
startup=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
ready=$(curl -fsS "$base/health/ready")
log "ready after ${startup}s: $ready"
python3 - "$ready" <<'PY'
import json, sys
checks = json.loads(sys.argv[1])["checks"]
assert {k: v["status"] for k, v in checks.items()} == {
    "database": "ok", "redis": "ok", "smtp": "ok", "storage": "ok"}, checks
PY
"${PODMAN[@]}" healthcheck run "$api" >/dev/null || { log "HEALTHCHECK failed"; exit 1; }
[ "$("${PODMAN[@]}" exec "$api" python3 -c 'import os; print(os.getuid())')" = 10001 ]
# Production refuses unknown ATRIUM_* variables: the entry point consumed the *_FILE ones.
curl -fsS -H "Authorization: Bearer image-test-metrics-token" "$base/metrics" | grep -q "^atrium_health_check_up"

email="image-$run_id@example.com"
password="correct horse battery staple"
code=$(curl -sS -o "$work/register.json" -w '%{http_code}' -X POST "$base/api/v1/auth/register" \
       -H 'Content-Type: application/json' -d "{\"email\": \"$email\", \"password\": \"$password\"}")
[ "$code" = 201 ] || { log "register: $code $(cat "$work/register.json")"; exit 1; }
curl -fsS -X POST "$base/api/v1/auth/login" --data-urlencode "username=$email" \
     --data-urlencode "password=$password" -o "$work/login.json"
token=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["access_token"])' "$work/login.json")
me=$(curl -fsS "$base/api/v1/users/me" -H "Authorization: Bearer $token")
[[ "$me" == *"\"$email\""* ]] || { log "/users/me: $me"; exit 1; }
log "registered and logged in $email"

log "atrium worker delivers the verification email"
"${PODMAN[@]}" run -d --name "$worker" "${common[@]}" "$IMAGE" worker >/dev/null
for _ in $(seq 1 120); do
  grep -q "$email" "$work/smtp.log" && break
  sleep 0.5
done
grep -q "$email" "$work/smtp.log" || { log "no email to $email"; "${PODMAN[@]}" logs "$worker" | tail -n 20; exit 1; }
grep -q "https://id.example.com/verify-email?token=" "$work/smtp.log"
"${PODMAN[@]}" stop -t 10 "$worker" >/dev/null

echo "image: $IMAGE size_mb=$((size / 1000000)) build_seconds=$build_seconds startup_seconds=$startup"
