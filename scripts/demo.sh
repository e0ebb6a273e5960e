#!/usr/bin/env bash
# The main job: the end-to-end ShareVault demo on embedded defaults (SoftHSM custodians under
# ./demo-out, in-process MQTT broker, SQLite). Installs what it needs the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dotnet build src/ShareVault.Demo/ShareVault.Demo.csproj -c Release -nologo -v quiet
exec dotnet src/ShareVault.Demo/bin/Release/net10.0/sharevault-demo.dll "$@"
