#!/usr/bin/env bash
# Creates named SoftHSM2 tokens in a project-local folder (never the system token directory).
#
#   softhsm-config/create-tokens.sh DIR LABEL [LABEL ...]
#
# Writes DIR/softhsm2.conf, DIR/tokens/ and, per token, DIR/pins/LABEL.pin (user PIN, mode 0600)
# and DIR/pins/LABEL.so-pin. PINs are random unless USER_PIN / SO_PIN are set. Tokens that already
# exist are kept (idempotent); a label with a PIN file but no token listed is refused, not made
# again. Use the tokens with:  export SOFTHSM2_CONF=DIR/softhsm2.conf
# and custodian URIs  pkcs11:token=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:DIR/pins/LABEL.pin
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: $0 DIR LABEL [LABEL ...]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mkdir -p "$1" && cd "$1" && pwd)
shift

if ! command -v softhsm2-util >/dev/null 2>&1; then
  echo "softhsm2-util not found: install it with 'apt-get install softhsm2'" >&2
  exit 1
fi

umask 077
mkdir -p "$dir/tokens" "$dir/pins"
sed "s#@TOKENDIR@#$dir/tokens#" "$here/softhsm2.conf.template" > "$dir/softhsm2.conf"
export SOFTHSM2_CONF="$dir/softhsm2.conf"

random_pin() { head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

existing=$(softhsm2-util --show-slots 2>/dev/null | sed -n 's/^ *Label: *//p' | sed 's/ *$//')
for label in "$@"; do
  if printf '%s\n' "$existing" | grep -qxF -- "$label"; then
    echo "token '$label' already exists"
    continue
  fi
  if [ -e "$dir/pins/$label.pin" ]; then
    # Its PIN file says this script made the token, yet SoftHSM does not list it: its files are
    # damaged (an empty or cut-short token.object, from a process killed while rewriting it) or were
    # being rewritten by another process just now. A second token of that label would hide the
    # first and every key in it, so stop and say so.
    {
      echo "token '$label' was created here before ($dir/pins/$label.pin exists) but SoftHSM does not list it;"
      echo "refusing to create a second '$label'. Its folder under $dir/tokens is damaged or in use by another process:"
      for token in "$dir"/tokens/*/; do
        echo "  $token: token.object $(stat -c %s "$token/token.object" 2>/dev/null || echo missing) bytes"
      done
      echo "Stop any process using $dir and run again, or delete $dir to start over with new tokens."
    } >&2
    exit 1
  fi
  user_pin=${USER_PIN:-$(random_pin)}
  so_pin=${SO_PIN:-$(random_pin)}
  printf '%s' "$user_pin" > "$dir/pins/$label.pin"
  printf '%s' "$so_pin" > "$dir/pins/$label.so-pin"
  softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$user_pin" >/dev/null
  echo "token '$label' created (PIN in $dir/pins/$label.pin)"
done
