#!/usr/bin/env bash
# Every deployment check, with its duration. Needs root (apt-get, podman) and this
# machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379); .ci/deploy-checks
# runs it after `make test`.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"

step() {  # step <name> <command...>: run, time, and remember the outcome
  local name=$1 t0=$SECONDS; shift
  log "=== $name"
  if "$@"; then
    timings+=("$(printf '%-44s %4ss  ok' "$name" $((SECONDS - t0)))")
  else
    timings+=("$(printf '%-44s %4ss  FAILED' "$name" $((SECONDS - t0)))")
    failed=1
  fi
}
timings=()
failed=0

# --- tools -------------------------------------------------------------------------------
setup_podman
apt_install prometheus age postgresql-client openssl curl rclone
export PATH="$HOME/.local/bin:$PATH"
command -v kubernetes-validate >/dev/null || uv tool install --quiet kubernetes-validate==1.37.0
# Debian's podman-compose (1.0.3) has no `config` command.
podman-compose config --help >/dev/null 2>&1 || uv tool install --quiet podman-compose==1.6.0
command -v kubectl >/dev/null || { log "kubectl (>= 1.27) is needed for kustomize"; exit 1; }

export ATRIUM_TEST_DEPLOY_CHECKS=1
export ATRIUM_TEST_DATABASE_URL=${ATRIUM_TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/postgres}
export ATRIUM_TEST_REDIS_URL=${ATRIUM_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}

step "promtool check + test rules" bash -c \
  'promtool check rules deploy/prometheus/alerts.yaml && promtool test rules deploy/prometheus/alerts_test.yaml'
step "pytest tests/deploy (compose, k8s, alerts, restore drills, S3 backup)" \
  uv run --frozen pytest tests/deploy -q -p no:cacheprovider
step "image: debootstrap base, build, run" "$DEPLOY_TEST_DIR/image.sh"
step "kubernetes: validate, podman kube play" "$DEPLOY_TEST_DIR/kube.sh"
step "API suite on a database upgraded from the previous head" env ATRIUM_TEST_UPGRADE_FROM=previous \
  uv run --frozen pytest tests/auth tests/users tests/rbac tests/test_upgrade.py \
  -q -p no:cacheprovider -k postgresql

printf '%s\n' "" "deployment checks:" "${timings[@]}"
exit $failed
