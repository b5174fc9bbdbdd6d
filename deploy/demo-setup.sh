#!/usr/bin/env bash
# Prepares the compose demo (deploy/compose.yaml); `make demo` runs it.
#
#  - deploy/.env: made from deploy/.env.example with fresh random secrets;
#    an existing .env is kept.
#  - deploy/tls/issuer.crt and issuer.key: a self-signed certificate for
#    localhost and 127.0.0.1, valid 30 days; an existing pair is kept.
#
# Needs openssl. DEMO_DIR writes elsewhere (the tests use it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${DEMO_DIR:-$here}"
command -v openssl >/dev/null || { echo "demo-setup: openssl is needed; install it (apt-get install openssl, brew install openssl)" >&2; exit 1; }

if [ -f "$out/.env" ]; then
  echo "demo-setup: keeping $out/.env"
else
  (
    umask 077
    sed -e "s|^ISSUER_SECRET=.*|ISSUER_SECRET=$(openssl rand -hex 32)|" \
        -e "s|^ISSUER_ADMIN_TOKEN=.*|ISSUER_ADMIN_TOKEN=$(openssl rand -hex 32)|" \
        -e "s|^REDIS_PASSWORD=.*|REDIS_PASSWORD=$(openssl rand -hex 32)|" \
        "$here/.env.example" > "$out/.env.tmp"
  )
  if grep -q '^[^#]*=.*REPLACE-ME' "$out/.env.tmp"; then
    rm -f "$out/.env.tmp"
    echo "demo-setup: deploy/.env.example has a setting this script does not fill in; update the script" >&2
    exit 1
  fi
  mv "$out/.env.tmp" "$out/.env"
  echo "demo-setup: wrote $out/.env with random secrets"
fi

if [ -f "$out/tls/issuer.crt" ] && [ -f "$out/tls/issuer.key" ]; then
  echo "demo-setup: keeping $out/tls/issuer.crt"
else
  mkdir -p "$out/tls"
  openssl req -x509 -newkey rsa:2048 -sha256 -days 30 -nodes \
    -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$out/tls/issuer.key" -out "$out/tls/issuer.crt" 2>/dev/null
  # nginx reads the key as root in its container; others need not.
  chmod 600 "$out/tls/issuer.key"
  chmod 644 "$out/tls/issuer.crt"
  echo "demo-setup: wrote a self-signed certificate for localhost to $out/tls/"
fi
