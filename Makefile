# havip-agent build, test and packaging entry points.
GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
BIN       := bin
# golangci-lint, pinned in its own module so that its dependencies stay
# out of the agent's go.mod; the Go toolchain builds it on first use.
LINT      := $(GO) tool -modfile=.ci/tools/go.mod golangci-lint
# The packages whose tests need no network namespaces (agent/netif's
# integration tests make their own), for the race detector, which needs cgo.
RACE_PKGS  = $(shell $(GO) list ./agent/... ./cloud/... ./health/... ./cmd/... | grep -v '/agent/netif$$')

.PHONY: all build test test-unit lint bench chaos fleet demo package package-test rules-test clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/havip-agent ./cmd/havip-agent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bce-emulator ./cmd/bce-emulator

# The whole suite, then the packages that need no network namespaces again
# under the race detector. Root-only integration tests skip when not root;
# with HAVIP_E2E=1 (CI) a skip is a failure.
test:
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(GO) test -count=1 -race -short -timeout 20m $(RACE_PKGS)

test-unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) -C .ci/tools mod tidy -diff
	$(LINT) run ./...

# The failover demo (root): keepalived pair (VRRPv3, shared VIPs) + agents +
# emulator + client in network namespaces; prints the timelines of two
# faults (the MASTER cut off the network, a graceful stop of its keepalived)
# and their recoveries.
demo: build
	@command -v keepalived >/dev/null && command -v ping >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq keepalived iputils-ping >/dev/null; }
	$(GO) build -o $(BIN)/havip-demo ./e2e/cmd/havip-demo
	$(BIN)/havip-demo -agent $(BIN)/havip-agent -emulator $(BIN)/bce-emulator

# Benchmarks need root (network namespaces); figures go into README.md.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 90m ./e2e/...

# Chaos scenarios (root, keepalived; network namespaces only): every
# scenario with its full run count (about 21 minutes; the split brain holds
# for 2 minutes). Prints the table and writes e2e/results/chaos.md and
# chaos.json. HAVIP_CHAOS_ONLY=cloud-faults,backup-blip runs only the
# scenarios it names, in table order; an unknown name fails with the list
# of names (the registry in e2e/chaos_suite_test.go). A subset with fewer
# runs is part of "make test".
chaos:
	HAVIP_CHAOS=1 $(GO) test -count=1 -run '^TestChaos$$' -timeout 60m ./e2e/; \
		rc=$$?; cat e2e/results/chaos.md 2>/dev/null; exit $$rc

# The fleet simulation (root; one network namespace, no keepalived): 50
# pairs of agents in one account, every MASTER failing at once under the
# emulator's account-wide rate limit of 10, 20 and 50 requests/s (API round
# trip 50 ms). Prints the table and writes e2e/results/fleet.json and
# fleet.md. A fleet of four pairs at 20 requests/s is part of "make test".
fleet:
	HAVIP_FLEET=1 $(GO) test -count=1 -run '^TestIntegrationFleet$$' -timeout 30m ./e2e/; \
		rc=$$?; cat e2e/results/fleet.md 2>/dev/null; exit $$rc

# .deb and .rpm in dist/ (nfpm v2.44.0 is built with the Go toolchain into
# bin/tools; v2.48.0 needs modules the proxy does not serve).
package:
	packaging/build.sh

package-test: package
	packaging/test-packages.sh

rules-test:
	promtool check rules contrib/prometheus/havip-agent.rules.yml
	cd contrib/prometheus && promtool test rules havip-agent.rules.test.yml

clean:
	rm -rf $(BIN) dist
