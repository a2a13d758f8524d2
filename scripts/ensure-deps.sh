#!/usr/bin/env bash
# Installs what the demo, tests and benchmarks need on a fresh Debian/Ubuntu machine:
# the PostgreSQL server package (tests start their own private instance from its binaries), pgbouncer (PgBouncerTests) and stunnel4
# (TLS-terminating proxy in front of the Kafka mock broker in the TLS tests). Idempotent; quiet when present.
set -euo pipefail

need=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null && [ -z "${PG_BIN:-}" ]; then
  need+=(postgresql)
fi
if [ ! -x /usr/sbin/pgbouncer ]; then
  need+=(pgbouncer)
fi
if ! command -v stunnel4 > /dev/null && ! command -v stunnel > /dev/null; then
  need+=(stunnel4)
fi
if ! command -v openssl > /dev/null; then
  need+=(openssl)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null
  # The Debian package starts a cluster on 5432 we do not use; stop it so it costs nothing.
  if command -v pg_ctlcluster > /dev/null; then
    for c in $(pg_lsclusters -h 2>/dev/null | awk '{print $1"/"$2}'); do $SUDO pg_ctlcluster ${c%/*} ${c#*/} stop 2>/dev/null || true; done
  fi
fi

if ! command -v kubectl > /dev/null; then
  # Optional: K8sManifestTests renders k8s/ with `kubectl kustomize` when it is present and checks the files directly
  # otherwise. Debian has no kubectl package of its own; it comes from the Kubernetes apt repository (pkgs.k8s.io).
  echo "note: kubectl not found; the k8s/ render check will be skipped (install kubectl from pkgs.k8s.io to run it)" >&2
fi

if ! command -v dotnet > /dev/null; then
  echo "dotnet (the .NET 10 SDK) is required: https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2
  exit 1
fi
