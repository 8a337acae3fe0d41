# gogoc — see README.md. `make demo` and `make test` are the two entry points.
GO      ?= go
# One version for the binary and the packages (scripts/version.sh).
VERSION ?= $(shell scripts/version.sh 2>/dev/null || echo 0.0.0-r0)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin
# A count, not a duration: duration-based -fuzztime races the Go 1.26
# coordinator into a spurious "context deadline exceeded" (golang/go#75804).
FUZZTIME ?= 20000x

.PHONY: all build test test-unit test-load fuzz-smoke lint demo bench clean test-vm test-cross cross size ipk apk packages bench-router bench-daemon bench-v4v6 bench-deadpeer bench-inline size-parts tools tools-demo

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/gogoc ./cmd/gogoc
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/tspbroker ./cmd/tspbroker

# What demo and test need, installed when missing (apt as root, staticcheck,
# Go modules); a second run installs nothing and takes well under a second.
tools-demo:
	@scripts/install-tools.sh demo

tools:
	@scripts/install-tools.sh test

# Everything CI runs: lint, all tests (namespace tests need root and skip
# with a reason otherwise), and each fuzz target for a few seconds.
test: tools lint test-unit fuzz-smoke

test-unit: tools
	$(GO) test -count=1 ./...

# test-unit while two CPU burners compete for the cores: tests hold on a
# small, busy machine (timing belongs in benchmarks).
test-load: tools
	GO=$(GO) scripts/test-load.sh

fuzz-smoke:
	scripts/fuzz-smoke.sh $(FUZZTIME)

lint: tools
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags gogoc_break_byteorder ./internal/rtlink
	shellcheck -x scripts/*.sh scripts/lib/*.sh scripts/vm/*.sh scripts/vm/init .ci/run openwrt/gogoc/files/gogoc.init openwrt/gogoc/files/gogoc.hotplug \
		openwrt/gogoc/files/gogoc.uci-defaults openwrt/gogoc/files/gogoc-openwrt openwrt/*/scripts/* \
		openwrt/pkgtest/testdata/openwrt/etc/rc.common openwrt/pkgtest/testdata/openwrt/lib/functions.sh \
		openwrt/pkgtest/testdata/openwrt/lib/functions/procd.sh
	@sc="$$($(GO) env GOPATH)/bin/staticcheck"; if [ -x "$$sc" ]; then "$$sc" ./...; \
	elif command -v staticcheck >/dev/null; then staticcheck ./...; \
	else echo "staticcheck not installed (scripts/install-tools.sh)"; exit 1; fi

demo: tools-demo build
	scripts/demo.sh

bench:
	scripts/bench-negotiate.sh

# Figures that need root and namespaces (see README, Figures).
bench-router: build
	scripts/bench-router.sh

bench-daemon: build
	scripts/bench-daemon.sh

# What each replaced library costs, each against a baseline built in the
# same run; size-rtlink.sh also fails if netlink's link-type code returns.
size-parts:
	scripts/size-rtlink.sh
	scripts/size-jsonread.sh
	scripts/size-jsonw.sh
	scripts/size-noinline.sh
	scripts/size-ndp.sh

# Size and CPU effect of the cross builds' -gcflags all=-l.
bench-inline: build
	scripts/bench-inline.sh

bench-v4v6:
	$(GO) test -run '^$$' -bench V4V6Throughput -benchtime 5x ./tunnel/

# How long a dead broker takes to notice, against the rule of spec §6 alone
# in the same run (about 2 min: every case waits a keepalive interval).
bench-deadpeer:
	$(GO) test -run '^$$' -bench DeadBroker -benchtime 1x ./tunnel/

# Every test that touches the kernel (tunnels, rtlink, router, RAs, WAN
# watch, gogoc run in router mode) inside Linux 6.1 under qemu, for
# ARCH=amd64 (default), mips (big-endian, kernel built from Debian's
# source and cached), mipsle, arm, arm64. Installs its own packages.
test-vm:
	scripts/vm-test.sh $(or $(ARCH),amd64)

# Pure-Go packages' tests for mips, mipsle, arm and arm64 under qemu-user.
test-cross:
	scripts/test-cross.sh

# Static, stripped binaries per router architecture into dist/.
cross:
	VERSION=$(VERSION) scripts/cross.sh dist

# Binary, gzip, ipk and apk sizes per architecture against the budgets
# (fails above).
size:
	scripts/size.sh dist

# OpenWrt packages (gogoc per arch, luci-app-gogoc) into dist/: ipk for
# opkg (24.10 and older), apk for apk-tools 3 (25.12 and later), or both.
ipk:
	PKG_FORMATS=ipk scripts/packages.sh dist

apk:
	PKG_FORMATS=apk scripts/packages.sh dist

packages:
	PKG_FORMATS="ipk apk" scripts/packages.sh dist

# The generated parts of docs/: the import table of docs/architecture.md
# (internal/archtest fails when it is stale).
.PHONY: docs
docs:
	$(GO) run ./scripts/importgraph -w docs/architecture.md

clean:
	rm -rf $(BIN) dist
