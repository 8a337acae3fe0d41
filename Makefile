# gogoc — see README.md. `make demo` and `make test` are the two entry points.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin
# A count, not a duration: duration-based -fuzztime races the Go 1.26
# coordinator into a spurious "context deadline exceeded" (golang/go#75804).
FUZZTIME ?= 20000x

.PHONY: all build test test-unit fuzz-smoke lint demo bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/gogoc ./cmd/gogoc
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tspbroker ./cmd/tspbroker

# Everything CI runs: lint, all tests (namespace tests need root and skip
# with a reason otherwise), and each fuzz target for a few seconds.
test: lint test-unit fuzz-smoke

test-unit:
	$(GO) test -count=1 ./...

fuzz-smoke:
	scripts/fuzz-smoke.sh $(FUZZTIME)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	shellcheck -x scripts/*.sh .ci/run
	@if command -v staticcheck >/dev/null; then staticcheck ./...; \
	elif [ -x "$$($(GO) env GOPATH)/bin/staticcheck" ]; then "$$($(GO) env GOPATH)/bin/staticcheck" ./...; \
	else echo "staticcheck not installed (scripts/install-tools.sh)"; exit 1; fi

demo: build
	scripts/demo.sh

bench:
	scripts/bench-negotiate.sh

clean:
	rm -rf $(BIN) dist
