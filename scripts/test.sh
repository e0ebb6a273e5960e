#!/usr/bin/env bash
# Runs the whole ShareVault test suite against real SoftHSM tokens, swtpm and MQTT brokers.
# Installs what it needs first (Debian packages); tests create their own tokens, TPMs and brokers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dotnet build ShareVault.sln -c Release -warnaserror -nologo -v quiet
log=$(mktemp)
set +e
dotnet test ShareVault.sln -c Release --no-build -nologo --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# awk alone: a grep finding no "Failed:" line would exit 1 and, with pipefail, end the script.
passed=$(awk '/^[[:space:]]+Passed: [0-9]+$/ {s += $2} END {print s + 0}' "$log")
failed=$(awk '/^[[:space:]]+Failed: [0-9]+$/ {s += $2} END {print s + 0}' "$log")
echo "tests: $passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
  # Repeated at the very end so that a log cut to its tail still names each failure and its reason.
  echo "failed tests (message and first lines of the stack trace):"
  awk '/^  Failed [A-Za-z]/ {show = 1; lines = 0}
       /^  (Passed|Skipped) [A-Za-z]/ || /^\[xUnit/ || /^Test Run / || /^Results File/ {show = 0}
       show && lines++ < 40' "$log"
fi
rm -f "$log"
exit "$status"
