# Shared helpers of the deployment checks (sourced, not run).
# Podman on these machines: rootful, runc as the runtime, host networking (no CNI/netavark
# set-up is needed, and the host's PostgreSQL and Redis are reachable on 127.0.0.1).

DEPLOY_TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$DEPLOY_TEST_DIR/../.." && pwd)
BASE_IMAGE=${ATRIUM_BASE_IMAGE:-localhost/atrium-base:bookworm}
IMAGE=${ATRIUM_IMAGE:-localhost/atrium:test}
PODMAN=(podman --runtime runc)

# uv: the one on PATH, else the Makefile's (.tools/bin/uv, installed on first use).
if ! command -v uv >/dev/null 2>&1; then
  make -C "$REPO_ROOT" --no-print-directory .tools/bin/uv >/dev/null
  PATH="$REPO_ROOT/.tools/bin:$PATH"
fi

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

apt_install() {  # apt_install <package>...: install those not installed yet
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_podman() {
  # catatonit: the init of the infra (pause) container of `podman kube play`; a Recommends
  # of podman, which --no-install-recommends leaves out.
  apt_install podman buildah runc debootstrap uidmap catatonit
  # The default ulimits (nofile from the host's hard limit) fail under runc on these hosts.
  if ! grep -qs '^default_ulimits = \[\]' /etc/containers/containers.conf; then
    mkdir -p /etc/containers
    printf '[containers]\ndefault_ulimits = []\n' > /etc/containers/containers.conf
  fi
}

debian_mirror() {  # the Debian mirror apt uses (deb822 sources or sources.list)
  local uri
  uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1)
  if [ -z "$uri" ]; then
    uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
          /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() {  # wait_http <url> <seconds>: until the URL answers 200
  local url=$1 deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$url" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      log "$url did not answer 200 within $2 s"
      return 1
    fi
    sleep 0.5
  done
}

pg_admin_url() {  # libpq URL of the PostgreSQL server the tests may create databases on
  echo "${ATRIUM_DEPLOY_PG:-postgresql://postgres@127.0.0.1:5432}"
}

create_database() {  # create_database <name>
  psql "$(pg_admin_url)/postgres" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$1\"" >/dev/null
}

drop_database() {  # drop_database <name>
  psql "$(pg_admin_url)/postgres" -qc "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null 2>&1 || true
}
