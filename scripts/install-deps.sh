#!/usr/bin/env bash
# Installs the Debian packages ShareVault uses, only those missing (idempotent, no prompts).
# --pi adds what scripts/pi-build.sh needs: qemu-user-static (qemu-aarch64 user emulation) and the
# arm64 architecture in dpkg, so that it can fetch arm64 libraries into its own sysroot folder.
set -euo pipefail
packages=(softhsm2 opensc openssl swtpm swtpm-tools libtss2-esys-3.0.2-0 libtss2-tctildr0 libtss2-tcti-swtpm0
          libtss2-tcti-device0 libtss2-mu0 libtss2-rc0 mosquitto sqlite3 postgresql
          chromium)  # headless Chromium for the dashboard's browser tests (driven by Playwright's bundled driver)
pi=0
if [ "${1:-}" = "--pi" ]; then
  pi=1
  packages+=(qemu-user-static)
fi
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if [ $pi -eq 1 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  "${sudo_cmd[@]}" dpkg --add-architecture arm64
  "${sudo_cmd[@]}" apt-get update -qq
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js runs the pinned Solidity compiler (solc-js) and carries anvil, the dev chain, both from npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# System mosquitto and PostgreSQL services are not wanted: tests start their own broker and
# database server on loopback (PostgresServer runs Debian's initdb in a temporary folder).
for service in mosquitto postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
done
# contracts/: solc-js and anvil at the versions package-lock.json pins (npm ci), into the repo
# only; reinstalled only when the lock file changed since the last install.
contracts="$(dirname "$0")/../contracts"
if [ ! -f "$contracts/node_modules/.package-lock.json" ] || [ "$contracts/package-lock.json" -nt "$contracts/node_modules/.package-lock.json" ]; then
  (cd "$contracts" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
