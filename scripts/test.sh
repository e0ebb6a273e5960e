#!/usr/bin/env bash
# Runs the whole ShareVault test suite against real SoftHSM tokens, swtpm and MQTT brokers.
# Installs what it needs first (Debian packages); tests create their own tokens and TPMs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dotnet build ShareVault.sln -c Release -warnaserror -nologo -v quiet
dotnet test ShareVault.sln -c Release --no-build -nologo --logger "console;verbosity=normal" "$@"
