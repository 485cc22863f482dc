#!/bin/sh
# Entry point of the Atrium image: `atrium "$@"` (serve, migrate, worker, create-admin ...).
#
# Secrets from files: for every variable NAME_FILE=/path among ATRIUM_* (compose and
# Kubernetes secrets are mounted as files), NAME is set to the file's content, unless the
# setting itself takes a file (ATRIUM_AUTH__SIGNING_KEY_FILE, which Atrium reads itself).
set -eu

for var in $(env | sed -n 's/^\(ATRIUM_[A-Z0-9_]*_FILE\)=.*/\1/p'); do
  case "$var" in
    ATRIUM_AUTH__SIGNING_KEY_FILE) continue ;;
  esac
  target=${var%_FILE}
  eval "path=\${$var}"
  if [ ! -r "$path" ]; then
    echo "atrium-entrypoint: $var points to $path, which cannot be read" >&2
    exit 2
  fi
  value=$(cat "$path")
  export "$target=$value"
  unset "$var"
done

# A command that is not an atrium subcommand (sh, python3 ...) runs as given.
case "${1:-}" in
  ""|-*|serve|migrate|worker|create-admin|mail|seed|purge-deleted|events|import|jobs|mfa|retention) exec atrium "$@" ;;
  *) exec "$@" ;;
esac
