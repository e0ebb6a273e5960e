#!/usr/bin/env bash
# The Raspberry Pi build, proven without a Pi: a trimmed, self-contained linux-arm64 publish of the
# device agent (and of the simulators CLI, which runs the same agent pipeline and dotnet/iot drivers
# over register-level simulated chips), run under qemu-aarch64 user emulation against the
# simulators. The arm64 agent signs a scenario's evidence; the x64 evidence verifier (the check the
# service's ingest runs first: COSE_Sign1 signature, payload, hash chain) accepts it; and a running
# x64 claims service (`sharevault serve`, embedded broker, SQLite, SoftHSM custodians) ingests a
# second arm64 run delivered over MQTT, stores every record, and opens and pays the claim the
# scenario's policy triggers (luggage-drop: "free_fall == 1 then shock > 8 g within 1s").
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

# The service accepts the arm64 agent's evidence over MQTT. The device key is made first (a
# software P-256 key in the agent's state folder, as the simulator would make it) so the device can
# be enrolled before its first record: the service refuses records of devices it does not know.
if [ "$scenario" = luggage-drop ]; then
  svc=$out/service
  rm -rf "$svc"
  mkdir -p "$svc/agent"
  dotnet build src/ShareVault -c Release -nologo -v quiet >/dev/null
  sv() { dotnet src/ShareVault/bin/Release/net10.0/sharevault.dll --data-dir "$svc/data" "$@"; }
  softhsm-config/create-tokens.sh "$svc/hsm" pi-a pi-b pi-c >/dev/null
  export SOFTHSM2_CONF=$svc/hsm/softhsm2.conf
  c() { echo "pkcs11:token=$1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:$svc/hsm/pins/$1.pin"; }
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$svc/agent/device-key.pem")
  openssl pkey -in "$svc/agent/device-key.pem" -pubout -out "$svc/device.pem" 2>/dev/null
  sv key create --name pi-pool --scheme product-rsa --threshold 2 --bits 2048 \
      --custodian "$(c pi-a)" --custodian "$(c pi-b)" --custodian "$(c pi-c)" >/dev/null
  sv pool create --pool pi --name "Pi kits" --key pi-pool --max-payout 50000 >/dev/null
  sv pool join --pool pi --member traveller >/dev/null
  sv pool premium --pool pi --member traveller --amount 20000 >/dev/null
  sv pool policy --pool pi --member traveller --policy bag-drop --amount 15000 \
      --rule "free_fall == 1 then shock > 8 g within 1s" >/dev/null
  sv device enroll --pool pi --member traveller --device pi-arm64 --device-key "$svc/device.pem" >/dev/null
  port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
  mqtt=$(port); http=$(port)
  # Started without the sv function, so that $! is the service process itself and the trap stops it.
  dotnet src/ShareVault/bin/Release/net10.0/sharevault.dll --data-dir "$svc/data" serve \
      --mqtt-port "$mqtt" --mqtt-tls-port 0 --http-port "$http" >"$svc/serve.log" 2>&1 &
  serve=$!
  trap 'kill $serve 2>/dev/null; wait $serve 2>/dev/null || true' EXIT
  for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$http/health" >/dev/null 2>&1 && break; sleep 0.2; done
  echo "service up (MQTT 127.0.0.1:$mqtt, HTTP 127.0.0.1:$http); the arm64 agent delivers over MQTT…"
  t0=$(ms)
  "${qemu[@]}" "$out/simulators/Simulators" run --scenario "$scenario" --sink "dir:$svc/agent-out" --state "$svc/agent" \
      --device-id pi-arm64 --broker "mqtt://127.0.0.1:$mqtt" | tail -n 1
  t1=$(ms)
  echo "delivered under qemu-aarch64 in $((t1 - t0)) ms"
  claims=""
  for _ in $(seq 1 150); do
    claims=$(curl -fsS "http://127.0.0.1:$http/claims?pool=pi")
    echo "$claims" | grep -q '"paid"' && break
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:$http/devices/pi-arm64" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print("service: device {0} stored up to sequence {1}, rules evaluated up to {2}".format(d["id"], d["maxSeq"], d["evaluatedSeq"]))'
  echo "service rejections by reason: $(curl -fsS "http://127.0.0.1:$http/evidence/rejections/counts")"
  echo "$claims" | python3 -c 'import json, sys
for c in json.load(sys.stdin):
    print("service claim {0}: {1}, {2} minor units, evidence #{3}, {4}".format(c["id"], c["status"], c["amount"], "+#".join(str(e["seq"]) for e in c["evidence"]), c["reason"]))'
  echo "$claims" | grep -q '"paid"' || { echo "the service did not pay the arm64 kit's claim; log: $svc/serve.log" >&2; exit 1; }
  # Anyone can re-check it offline: the export carries the arm64 records the claim cites, and
  # `ledger verify` re-verifies their signatures and recomputes the trigger on them.
  sv ledger export --pool pi --out "$svc/ledger.json" >/dev/null
  sv ledger verify --in "$svc/ledger.json" | tail -n 2
fi
echo "arm64 build and evidence in $out"
