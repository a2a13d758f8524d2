#!/usr/bin/env bash
# Runs the demo on a fresh machine: a private PostgreSQL (temp dir, loopback), the outbox table and its NOTIFY
# trigger, the Kafka mock broker, a Centrifugo stand-in, one Centrifugo.Actors node, and producers writing sample
# commands across partitions, with live progress. Ctrl-C stops everything cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec dotnet run --project tests/Centrifugo.Actors.Demo -c Release -- "$@"
