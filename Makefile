# The two commands of the README:
#   make run    (or: go run ./cmd/issuer serve) runs the issuer on the embedded store
#   make test   installs what the tests need, then runs every check and test
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run build release test deps check unit fuzz bench load clean demo demo-down deploy-test

run:
	$(GO) run ./cmd/issuer serve

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/issuer ./cmd/issuer

# release builds static binaries for every platform of RELEASE_PLATFORMS
# into DIST, named issuer-VERSION-OS-ARCH, with their SHA-256 sums in
# DIST/SHA256SUMS. The build is reproducible: -trimpath and no cgo, so the
# same commit built with the same Go gives the same bytes anywhere
# (internal/deploytest checks it).
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST ?= dist
release:
	rm -rf "$(DIST)" && mkdir -p "$(DIST)"
	set -e; for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  echo "release: $(DIST)/issuer-$(VERSION)-$$os-$$arch"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
	    -o "$(DIST)/issuer-$(VERSION)-$$os-$$arch" ./cmd/issuer; \
	done
	cd "$(DIST)" && sha256sum issuer-* > SHA256SUMS && cat SHA256SUMS

# test is what CI runs (.ci/run). Nothing is skipped: a missing tool is
# installed by scripts/test-deps.sh or the run fails.
test: deps check unit fuzz

deps:
	./scripts/test-deps.sh

# MODULES are the repository's Go modules: the issuer, and verify and
# verify/dpopredis, which resource APIs import without the issuer's
# dependencies (docs/verify.md, "Versions"). ./... stops at a nested
# go.mod, so check and unit run in each. VERIFY_GO is the oldest Go that
# verify/go.mod declares: unit tests verify with that toolchain too, which
# the go command fetches through the module proxy on first use.
MODULES   := . verify verify/dpopredis
VERIFY_GO := go$(shell sed -n 's/^go //p' verify/go.mod)

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	set -e; for m in $(MODULES); do \
	  echo "check: $$m"; \
	  (cd $$m && $(GO) vet ./... && "$$($(GO) env GOPATH)/bin/staticcheck" ./...); \
	done
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/issuer

unit:
	set -e; for m in $(MODULES); do \
	  echo "unit: $$m"; \
	  (cd $$m && $(GO) test -race -count=1 ./...); \
	done
	cd verify && GOTOOLCHAIN=$(VERIFY_GO) $(GO) test -count=1 ./...

# A short fuzzing pass over the parsers that meet untrusted input, and the
# hand-written JSON encoders that put client-registered text into tokens
# and responses (checked against encoding/json). Budgets are counts of
# executions, not durations: with a duration, Go 1.26's fuzz coordinator can
# report a spurious "context deadline exceeded" failure when the time runs
# out on a loaded machine (go.dev/issue/75804, fixed in Go 1.27). Each count
# is about 10 s of fuzzing here (20 s for the token endpoint).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzTokenRequest$$' -fuzztime 80000x ./internal/grant
	cd verify && $(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 100000x .
	cd verify && $(GO) test -run '^$$' -fuzz '^FuzzDPoPProof$$' -fuzztime 100000x .
	cd verify && $(GO) test -run '^$$' -fuzz '^FuzzStatusList$$' -fuzztime 2000x .
	$(GO) test -run '^$$' -fuzz '^FuzzAppendString$$' -fuzztime 150000x ./internal/jsonenc
	$(GO) test -run '^$$' -fuzz '^FuzzWriteToken$$' -fuzztime 150000x ./internal/grant
	$(GO) test -run '^$$' -fuzz '^FuzzParseDjango$$' -fuzztime 150000x ./internal/userimport
	$(GO) test -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime 300000x ./internal/password
	$(GO) test -run '^$$' -fuzz '^FuzzClientAssertion$$' -fuzztime 150000x ./internal/grant
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 100000x ./internal/jwk

bench:
	set -e; for m in $(MODULES); do (cd $$m && $(GO) test -run '^$$' -bench . -benchmem ./...); done

# load runs the load harness (bench/load): the issuer against the baseline
# server of bench/baseline, interleaved, medians of 3 runs; BENCHMARKS.md
# explains the figures. Override with e.g. LOAD_FLAGS="-scenario cc -redis".
LOAD_FLAGS ?= -scenario all -store embedded,redis -runs 3
load:
	$(GO) run ./bench/load $(LOAD_FLAGS)

clean:
	rm -rf bin dist

# demo starts deploy/compose.yaml: two issuers behind Nginx on Redis (AOF)
# and the example resource API, at https://localhost:8443 and
# http://localhost:8090. Needs Docker with compose v2 and openssl.
COMPOSE := docker compose -f deploy/compose.yaml --env-file deploy/.env

demo:
	./deploy/demo-setup.sh
	$(COMPOSE) up --build --wait
	@echo "issuer: https://localhost:8443  (curl --cacert deploy/tls/issuer.crt ...)"
	@echo "API:    http://localhost:8090/v1/items"
	@echo "admin:  $(COMPOSE) exec issuer-1 issuer clients create --name demo --scope 'read write' --audience https://api.example.com"
	@echo "stop:   make demo-down"

demo-down:
	$(COMPOSE) down

# deploy-test runs the deployment checks alone: the Dockerfile lint and
# build stage, the manifests, and the issuer behind a real Nginx (part of
# make test too).
deploy-test:
	$(GO) test -race -count=1 ./internal/deploytest
