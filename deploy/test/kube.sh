#!/usr/bin/env bash
# Kubernetes manifests without a cluster: render both overlays (kubectl's built-in
# kustomize), validate them against the Kubernetes schemas (kubernetes-validate), then run
# the staging API Deployment with `podman kube play` on the image built by image.sh against
# this machine's PostgreSQL, Redis, an SMTP server (aiosmtpd) and an S3 server (moto), and
# wait for /health/ready. What a single host cannot show (scheduling, the HPA, the PDB,
# NetworkPolicy enforcement, the Ingress) is checked by schema and by
# tests/deploy/test_kubernetes.py only.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
setup_podman
command -v kubectl >/dev/null || { log "kubectl (>= 1.27) is needed for kustomize"; exit 1; }
command -v kubernetes-validate >/dev/null || { log "kubernetes-validate is needed (uv tool install kubernetes-validate)"; exit 1; }
"${PODMAN[@]}" image exists "$IMAGE" || "$DEPLOY_TEST_DIR/image.sh"

run_id=$(date +%s)-$$
db=atrium_kube_${run_id//-/_}
prefix="atrium-kube-test:$run_id:"
work=$(mktemp -d)
pids=()
cleanup() {
  [ -f "$work/play.yaml" ] && "${PODMAN[@]}" kube down "$work/play.yaml" >/dev/null 2>&1 || true
  "${PODMAN[@]}" secret rm atrium-secrets >/dev/null 2>&1 || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  drop_database "$db"
  redis-cli -h 127.0.0.1 --scan --pattern "${prefix}*" | xargs -r redis-cli -h 127.0.0.1 del >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
[ -n "${KEEP_WORK:-}" ] && trap - EXIT

for overlay in staging production; do
  kubectl kustomize "$REPO_ROOT/deploy/kubernetes/overlays/$overlay" > "$work/$overlay.yaml"
  kubernetes-validate --strict --quiet "$work/$overlay.yaml"
  log "$overlay: $(grep -c '^kind:' "$work/$overlay.yaml") resources rendered and valid"
done
kubernetes-validate --strict --quiet "$REPO_ROOT/deploy/kubernetes/base/secret.example.yaml"

create_database "$db"
# The migration Job's command, with the same image and settings as the Deployment.
mkdir -p "$work/keys"
openssl genpkey -algorithm ed25519 -out "$work/keys/signing_key" 2>/dev/null
chmod 0644 "$work/keys/signing_key"  # read by uid 10001 through the host-path mount
smtp_port=$(free_port)
s3_port=$(free_port)
(cd "$REPO_ROOT" && exec uv run --frozen python -m aiosmtpd -n -c aiosmtpd.handlers.Sink \
   -l "127.0.0.1:$smtp_port") >"$work/smtp.log" 2>&1 &
pids+=($!)
(cd "$REPO_ROOT" && exec uv run --frozen moto_server -H 127.0.0.1 -p "$s3_port") >"$work/s3.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$s3_port/" 60
bucket=atrium-kube-$run_id
curl -fsS -X PUT "http://127.0.0.1:$s3_port/$bucket" >/dev/null

port=$(free_port)
(cd "$REPO_ROOT" && uv run --frozen python "$DEPLOY_TEST_DIR/kube_play_manifest.py" \
   "$IMAGE" "$port" "postgresql+asyncpg://postgres@127.0.0.1:5432/$db" "$prefix" \
   "$smtp_port" "http://127.0.0.1:$s3_port" "$bucket" "$work/keys/signing_key" "$work/secret.json") \
   < "$work/staging.yaml" > "$work/play.yaml"

log "migration Job's command"
"${PODMAN[@]}" run --rm --network host -e ATRIUM_DATABASE__URL="postgresql+asyncpg://postgres@127.0.0.1:5432/$db" \
  "$IMAGE" migrate

log "podman kube play (staging API Deployment) on :$port"
t0=$(date +%s.%N)
"${PODMAN[@]}" secret create atrium-secrets "$work/secret.json" >/dev/null
"${PODMAN[@]}" kube play "$work/play.yaml" >"$work/play.log" 2>&1 || { cat "$work/play.log"; exit 1; }
wait_http "http://127.0.0.1:$port/health/ready" 120 || {
  "${PODMAN[@]}" pod ps; "${PODMAN[@]}" ps -a
  for c in $("${PODMAN[@]}" ps -a --format '{{.Names}}' | grep '^atrium-api-pod'); do "${PODMAN[@]}" logs "$c" | tail -n 30; done
  exit 1
}
startup=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))")
ready=$(curl -fsS "http://127.0.0.1:$port/health/ready")
log "ready after ${startup}s: $ready"
python3 - "$ready" <<'PY'
import json, sys
checks = json.loads(sys.argv[1])["checks"]
assert {k: v["status"] for k, v in checks.items()} == {
    "database": "ok", "redis": "ok", "smtp": "ok", "storage": "ok"}, checks
PY
# The rendered security context holds: non-root, read-only root file system.
container=$("${PODMAN[@]}" ps --format '{{.Names}}' | grep -E '^atrium-api-pod(-0)?-api$' | head -n 1)
[ -n "$container" ] || { log "no API container"; "${PODMAN[@]}" ps -a; exit 1; }
uid=$("${PODMAN[@]}" exec "$container" python3 -c 'import os; print(os.getuid())')
[ "$uid" = 10001 ] || { log "the API container runs as uid $uid"; exit 1; }
if "${PODMAN[@]}" exec "$container" touch /opt/atrium/x 2>/dev/null; then log "root file system is writable"; exit 1; fi
# The metrics token from the Secret protects /metrics.
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")" = 401 ]
curl -fsS -H "Authorization: Bearer kube-play-metrics-token" "http://127.0.0.1:$port/metrics" | grep -q '^atrium_health_check_up{check="storage"} 1.0'
echo "kube play: staging API pod ready in ${startup}s"
