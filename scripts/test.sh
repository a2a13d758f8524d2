#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs PostgreSQL/stunnel if missing, builds, tests.
# Tests start their own PostgreSQL instance, Kafka mock broker and Centrifugo stand-in on loopback.
# No lane argument: every test (what CI runs).
# --fast: only the pure and actor-level tests ([Trait(TestLane.Category, TestLane.Fast)]), no PostgreSQL, broker or
#         child process; the fixtures that would start one refuse in this lane (TestLane), so a mis-marked test fails
#         at once.
# --no-slow: every test except the slow lane ([Trait(TestLane.Category, TestLane.Slow)]): the chaos and fail-over
#         scenarios and the tests that assert on wall-clock time. For a developer; CI runs them.
# Other arguments go to `dotnet test` (e.g. --filter "FullyQualifiedName~GoDuration"); a --filter narrows the lane.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=0
noslow=0
filter=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --fast) fast=1 ;;
    --no-slow) noslow=1 ;;
    --filter) filter="$2"; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
if [ "$fast" = 1 ]; then
  export CENTRIFUGO_ACTORS_TEST_LANE=fast
  filter="Category=Fast${filter:+&($filter)}"
elif [ "$noslow" = 1 ]; then
  filter="Category!=Slow${filter:+&($filter)}"
fi
if [ -n "$filter" ]; then args+=(--filter "$filter"); fi
if [ "$fast" = 0 ]; then
  bash scripts/ensure-deps.sh
fi
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
dotnet build Centrifugo.Actors.sln -c Release -nologo -v quiet -clp:ErrorsOnly
status=0
dotnet test Centrifugo.Actors.sln -c Release --no-build -nologo \
  --logger "console;verbosity=normal" --logger "trx;LogFilePrefix=results" --results-directory "$results" "${args[@]}" || status=$?
# One closing line in the plain "N passed, N failed" form, summed over every test assembly.
python3 - "$results" <<'PY' || true
import glob, re, sys
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/*.trx"):
    m = re.search(r'<Counters [^>]*>', open(f, encoding="utf-8").read())
    if m:
        c = dict(re.findall(r'(\w+)="(\d+)"', m.group(0)))
        passed += int(c.get("passed", 0)); failed += int(c.get("failed", 0))
        skipped += int(c.get("notExecuted", 0))
print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
