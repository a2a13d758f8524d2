#!/usr/bin/env bash
# Runs the PostgreSQL outbox benchmarks (docs/benchmarks.md) with their defaults, or with the arguments given:
#   scripts/bench.sh                      # all modes: outbox (1M rows, limits 100,1000, 3 rounds), latency, memory, idle
#   scripts/bench.sh outbox --rounds 5    # one mode, other options (see --help output of the benchmark)
# Needs nothing but the .NET SDK and the PostgreSQL server binaries (installed by ensure-deps.sh); it starts its own
# private PostgreSQL server with stock settings and an in-process Centrifugo stand-in. Takes ~15 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
if [ $# -eq 0 ]; then set -- all; fi
exec dotnet run -c Release --project tests/Centrifugo.Actors.Benchmarks -- "$@"
