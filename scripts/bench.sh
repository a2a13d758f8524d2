#!/usr/bin/env bash
# Runs the PostgreSQL outbox benchmarks (docs/benchmarks.md) with their defaults, or with the arguments given:
#   scripts/bench.sh                      # all modes: outbox (1M rows, limits 100,1000, 3 rounds), latency, memory, idle
#   scripts/bench.sh outbox --rounds 5    # one mode, other options (see --help output of the benchmark)
#   scripts/bench.sh --r2r kafka ...      # the same, published ReadyToRun first, as the Dockerfile publishes the node:
#                                         # the first (cold) round then measures the code a deployment starts with
# Needs nothing but the .NET SDK and the PostgreSQL server binaries (installed by ensure-deps.sh); it starts its own
# private PostgreSQL server with stock settings and an in-process Centrifugo stand-in. Takes ~15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
r2r=false
if [ "${1:-}" = "--r2r" ]; then r2r=true; shift; fi
if [ $# -eq 0 ]; then set -- all; fi
if $r2r; then
  out=tests/Centrifugo.Actors.Benchmarks/bin/Release/r2r
  dotnet build tests/Centrifugo.Actors.KafkaMock -c Release -nologo -v quiet
  dotnet publish tests/Centrifugo.Actors.Benchmarks -c Release -r "${RID:-linux-x64}" --self-contained false \
    -p:PublishReadyToRun=true -o "$out" -nologo -v quiet
  exec dotnet "$out/Centrifugo.Actors.Benchmarks.dll" "$@"
fi
exec dotnet run -c Release --project tests/Centrifugo.Actors.Benchmarks -- "$@"
