#!/usr/bin/env bash
# Build the base image localhost/atrium-base:bookworm without a container registry:
# debootstrap (minbase) of Debian bookworm with python3 and python3-venv, imported with
# `podman import`. The root file system is cached as a tarball (ATRIUM_BASE_CACHE,
# /var/cache/atrium-base by default) because debootstrap takes minutes; delete it to
# rebuild. Equivalent to the Dockerfile's default BASE_IMAGE (python:3.11-slim-bookworm).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
setup_podman

PACKAGES=python3,python3-venv,ca-certificates,passwd,tzdata
CACHE_DIR=${ATRIUM_BASE_CACHE:-/var/cache/atrium-base}
KEY=$(echo "bookworm $PACKAGES v1" | sha256sum | cut -c1-12)
TARBALL=$CACHE_DIR/bookworm-$KEY.tar

if "${PODMAN[@]}" image exists "$BASE_IMAGE" \
   && [ "$("${PODMAN[@]}" image inspect -f '{{index .Labels "atrium.base.key"}}' "$BASE_IMAGE" 2>/dev/null)" = "$KEY" ]; then
  log "base image $BASE_IMAGE is present"
  exit 0
fi

if [ ! -s "$TARBALL" ]; then
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/atrium-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap bookworm from $mirror (a few minutes)"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$mirror" >/dev/null
  # Smaller image: no package lists, caches, documentation or man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
  mkdir -p "$CACHE_DIR"
  tar --numeric-owner -C "$rootfs" -cf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
fi

log "podman import $TARBALL as $BASE_IMAGE"
"${PODMAN[@]}" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL atrium.base.key=$KEY" \
  --change 'CMD ["python3"]' \
  "$TARBALL" "$BASE_IMAGE" >/dev/null
"${PODMAN[@]}" run --rm --network host "$BASE_IMAGE" python3 -c 'import venv, ssl, sys; print(sys.version)'
