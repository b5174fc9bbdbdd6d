# The two commands of the README:
#   make run    (or: go run ./cmd/issuer serve) runs the issuer on the embedded store
#   make test   installs what the tests need, then runs every check and test
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run build test deps check unit fuzz bench clean

run:
	$(GO) run ./cmd/issuer serve

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/issuer ./cmd/issuer

# test is what CI runs (.ci/run). Nothing is skipped: a missing tool is
# installed by scripts/test-deps.sh or the run fails.
test: deps check unit fuzz

deps:
	./scripts/test-deps.sh

check:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	"$$($(GO) env GOPATH)/bin/staticcheck" ./...
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/issuer

unit:
	$(GO) test -race -count=1 ./...

# A short fuzzing pass over the parsers that meet untrusted input.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzTokenRequest$$' -fuzztime 20s ./internal/grant

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
