#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs PostgreSQL/stunnel if missing, builds, tests.
# Tests start their own PostgreSQL instance, Kafka mock broker and Centrifugo stand-in on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
dotnet build Centrifugo.Actors.sln -c Release -nologo -v quiet -clp:ErrorsOnly
dotnet test Centrifugo.Actors.sln -c Release --no-build -nologo --logger "console;verbosity=normal" "$@"
