#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine: staticcheck and
# verify's oldest Go toolchain (Go module proxy), redis-server and
# redis-cli (Debian), nginx (Debian), Django with its Argon2 and bcrypt
# hashers, Django REST framework and SimpleJWT (Debian), Node.js and the
# npm packages of the interop check, curl and openssl (the README's quick
# start), promtool (Debian's prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "test-deps: need $* but cannot apt-get install as a non-root user; install them and rerun" >&2
    exit 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

gobin="$(go env GOPATH)/bin"
if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q '(0.8.2)'; then
  echo "test-deps: installing staticcheck v0.8.2"
  (cd /tmp && GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)
fi

# make unit also tests verify with the oldest Go its go.mod declares
# (GOTOOLCHAIN=goX.Y.Z). The go command downloads that toolchain through
# the module proxy (GOPROXY) on first use; fetch it here so that a proxy
# problem shows up as one, not as a failing test.
verify_go="go$(sed -n 's/^go //p' verify/go.mod)"
if ! GOTOOLCHAIN="$verify_go" go version >/dev/null; then
  echo "test-deps: cannot fetch the Go toolchain $verify_go through the module proxy ($(go env GOPROXY))" >&2
  exit 1
fi

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  echo "test-deps: installing redis-server (the Redis tests run a real one)"
  apt_install redis-server redis-tools
fi

# The deployment test (internal/deploytest) runs the built issuer behind a
# real Nginx with deploy/nginx/issuer.conf. Debian's policy-rc.d keeps apt
# from starting the packaged service; the test starts its own nginx.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "test-deps: installing nginx (the deployment test runs a real one)"
  apt_install nginx
fi

# The password tests check hashes and dumpdata output made by real Django,
# and the SimpleJWT test runs a Django REST framework resource server with
# SimpleJWT that verifies the issuer's tokens through its JWKS (PyJWT's JWK
# client, cryptography for RS256 and ES256), all run by Debian's Python
# (internal/djangotest): a Python installed apart, such as pyenv's first on
# PATH, does not see Debian's packages.
if ! /usr/bin/python3 -c 'import django, argon2, bcrypt, rest_framework, rest_framework_simplejwt, cryptography; from jwt import PyJWKClient' 2>/dev/null; then
  echo "test-deps: installing Django, its hashers, Django REST framework and SimpleJWT (the password and SimpleJWT tests run them)"
  apt_install python3-django python3-argon2 python3-bcrypt \
    python3-djangorestframework python3-djangorestframework-simplejwt python3-jwt python3-cryptography
fi

# The deployment test checks deploy/prometheus/alerts.yml and the queries of
# deploy/grafana/issuer.json with promtool, which Debian's prometheus package
# ships (apt does not start the service in a container without an init).
if ! command -v promtool >/dev/null; then
  echo "test-deps: installing prometheus (for promtool: the alert rules are checked with it)"
  apt_install prometheus
fi

# The Python example of docs/clients.md runs with Debian's requests.
if ! /usr/bin/python3 -c 'import requests' 2>/dev/null; then
  echo "test-deps: installing python3-requests (docs/clients.md's Python example runs with it)"
  apt_install python3-requests
fi

# The README test (cmd/issuer) runs the quick start's commands as written.
if ! command -v curl >/dev/null || ! command -v openssl >/dev/null; then
  echo "test-deps: installing curl and openssl (the README's quick start runs them)"
  apt_install curl openssl
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "test-deps: installing nodejs and npm"
  apt_install nodejs npm
fi
if [ ! -d interop/node_modules ] || [ interop/package-lock.json -nt interop/node_modules ]; then
  echo "test-deps: installing the interop check's npm packages"
  (cd interop && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "test-deps: ok"
