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
rm -f "$log"
echo "tests: $passed passed, $failed failed"
exit "$status"
