#!/usr/bin/env bash
# The Raspberry Pi build, proven without a Pi: a trimmed, self-contained linux-arm64 publish of the
# device agent (and of the simulators CLI, which runs the same agent pipeline and dotnet/iot drivers
# over register-level simulated chips), run under qemu-aarch64 user emulation against the
# simulators. The arm64 agent signs a scenario's evidence; the x64 evidence verifier (the check the
# service's ingest runs first: COSE_Sign1 signature, payload, hash chain) then accepts it.
#
#   ./scripts/pi-build.sh [--out DIR] [--scenario NAME]     (default ./pi-out, luggage-drop)
#
# Prints the publish sizes and start-up times (docs/device-agent.md has measured values).
set -euo pipefail
cd "$(dirname "$0")/.."
out=./pi-out
scenario=luggage-drop
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --scenario) scenario=$2; shift 2 ;;
    *) echo "usage: $0 [--out DIR] [--scenario NAME]" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)

./scripts/install-deps.sh --pi

# The arm64 libraries a self-contained .NET app still loads (glibc, libstdc++, OpenSSL for the
# device key's ECDSA, zlib, ICU), unpacked into a sysroot of our own for qemu's -L: nothing
# arm64 is installed on this machine.
sysroot=$out/sysroot
if [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  mkdir -p "$out/debs" "$sysroot"
  (cd "$out/debs" && apt-get download -qq libc6:arm64 libgcc-s1:arm64 libstdc++6:arm64 libssl3:arm64 zlib1g:arm64 libicu72:arm64 2>/dev/null)
  for deb in "$out"/debs/*.deb; do dpkg -x "$deb" "$sysroot"; done
fi

# Trimmed, self-contained. TrimMode=partial trims the framework and the libraries that declare
# themselves trimmable, not ours: the agent reads its configuration with reflection-based
# System.Text.Json, which full trimming would break (IL2026), and which a trimmed app disables
# unless asked (JsonSerializerIsReflectionEnabledByDefault). Trim warnings are not errors here.
publish() {
  # The trimmer bakes feature switches into the trimmed framework: never reuse an earlier trim.
  rm -rf "src/$1/obj/Release/net10.0/linux-arm64"
  dotnet publish "src/$1" -c Release -r linux-arm64 --self-contained -nologo -v quiet \
    -p:PublishTrimmed=true -p:TrimMode=partial -p:JsonSerializerIsReflectionEnabledByDefault=true \
    -p:TreatWarningsAsErrors=false -o "$out/$2" >/dev/null
}
echo "publishing the device agent and the simulators for linux-arm64 (trimmed, self-contained)…"
publish DeviceAgent device-agent
publish Simulators simulators
qemu=(qemu-aarch64-static -L "$sysroot")
file "$out/device-agent/device-agent" | sed 's/^/  /'
echo "publish size: device-agent $(du -sh "$out/device-agent" | cut -f1), simulators $(du -sh "$out/simulators" | cut -f1)"

# Start-up: the process starting, parsing its command line and printing its help, under emulation.
ms() { date +%s%N | cut -c1-13; }
t0=$(ms); "${qemu[@]}" "$out/device-agent/device-agent" --help >/dev/null; t1=$(ms)
echo "start-up under qemu-aarch64 (device-agent --help): $((t1 - t0)) ms"

# The arm64 agent pipeline against the simulators: real drivers on simulated chips, software
# device key (no PKCS#11 module or TPM is reachable from an emulated process), records signed
# into the durable outbox and written out.
rm -rf "$out/evidence"
t0=$(ms)
"${qemu[@]}" "$out/simulators/Simulators" run --scenario "$scenario" --sink "dir:$out/evidence" --device-id pi-arm64 | tail -n 1
t1=$(ms)
echo "scenario $scenario under qemu-aarch64: $((t1 - t0)) ms"

# The x64 verifier accepts the arm64 agent's evidence: signature under the device key, payload, chain.
dotnet run --project src/DeviceAgent -c Release -- verify --public-key "$out/evidence/device.pem" "$out"/evidence/*.cose | tail -n 3
echo "arm64 build and evidence in $out"
