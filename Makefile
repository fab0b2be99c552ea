# xsw: run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The workspace's modules as go.work lists them, relative to here ("." is the root one).
MODULES  := $(patsubst $(CURDIR)/%,%,$(patsubst $(CURDIR),.,$(shell go list -m -f '{{.Dir}}')))
PKGS     := github.com/xswtw/xsw/...
BIN      := bin
GOFLAGS_TEST ?= -race -count=1 -timeout 15m
# The unit tests mostly wait on Postgres and NATS: they run twice as many packages, and
# tests of one package, at once as there are CPUs (go test's default is as many).
TEST_JOBS := $(shell echo $$(( 2 * $$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1) )))

# golangci-lint, pinned, built with this Go into bin/tools by `make lint` when missing or
# of another version.
GOLANGCI_LINT_VERSION := 2.15.0
GOLANGCI_LINT := $(CURDIR)/$(BIN)/tools/golangci-lint

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build xsw, gateway, fetcher, indexer, sitesim and xswctl into bin/
	@mkdir -p $(BIN)
	go build -o $(BIN)/xsw ./dev/cmd/xsw
	go build -o $(BIN)/sitesim ./dev/cmd/sitesim
	go build -o $(BIN)/gateway ./services/gateway/cmd/gateway
	go build -o $(BIN)/fetcher ./services/fetcher/cmd/fetcher
	go build -o $(BIN)/indexer ./services/indexer/cmd/indexer
	go build -o $(BIN)/xswctl ./cmd/xswctl

.PHONY: run
run: build ## run the all-in-one against BASE_URL (default https://m.xsw.tw)
	@dev/scripts/ensure-postgres.sh
	$(BIN)/xsw run

.PHONY: demo
demo: build ## run the all-in-one against the simulated site, on :8000
	@dev/scripts/ensure-postgres.sh
	$(BIN)/xsw demo

.PHONY: migrate
migrate: build ## create the database if missing and apply migrations
	@dev/scripts/ensure-postgres.sh
	$(BIN)/indexer migrate

.PHONY: test
test: ## formatting, vet, tidiness, then every test with -race (needs Postgres, Chromium, zsh and fish; provides them)
	@dev/scripts/ensure-postgres.sh
	@dev/scripts/ensure-chromium.sh
	@dev/scripts/ensure-shells.sh
	@$(MAKE) --no-print-directory check
	go test -p $(TEST_JOBS) -parallel $(TEST_JOBS) $(GOFLAGS_TEST) $$(dev/scripts/unit-packages.sh)
	@# The end-to-end tests run real processes and measure rates: alone, after the rest.
	go test $(GOFLAGS_TEST) github.com/xswtw/xsw/dev/e2e
	@$(MAKE) --no-print-directory test-chaos

.PHONY: test-chaos
test-chaos: ## the chaos suite: processes killed, cut off and fed bad input (docs/reliability.md)
	@dev/scripts/ensure-postgres.sh
	@# -v: each scenario logs what it injected and measured.
	go test $(GOFLAGS_TEST) -v github.com/xswtw/xsw/dev/chaos

.PHONY: check
check: ## gofmt, go vet, go mod tidy and golangci-lint find nothing; every module's go line is go.work's
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@want=$$(go work edit -print | awk '$$1 == "go" {print $$2}'); \
	  bad=$$(go list -m -f '{{.GoVersion}} {{.Dir}}' | awk -v want="$$want" '$$1 != want {print "  " $$2 ": go " $$1}'); \
	  if [ -n "$$bad" ]; then echo "go.work says go $$want, these modules' go.mod otherwise:"; echo "$$bad"; exit 1; fi
	go vet $(PKGS)
	@for m in $(MODULES); do (cd $$m && go mod tidy -diff >/dev/null) || { echo "go mod tidy changes $$m"; exit 1; }; done
	@$(MAKE) --no-print-directory lint

.PHONY: lint
lint: ## golangci-lint (.golangci.yml) over every module, installing the pinned version into bin/tools
	@[ "$$($(GOLANGCI_LINT) version --short 2>/dev/null)" = "$(GOLANGCI_LINT_VERSION)" ] || \
	  GOBIN=$(dir $(GOLANGCI_LINT)) go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v$(GOLANGCI_LINT_VERSION)
	@# One module a run: golangci-lint v2 loads the packages of the module it runs in.
	@for m in $(MODULES); do (cd $$m && $(GOLANGCI_LINT) run ./...) || { echo "golangci-lint: findings in $$m"; exit 1; }; done

.PHONY: fuzz
fuzz: ## run each fuzz target of the site adapters for FUZZTIME (default 20s)
	@for p in ./services/fetcher/site ./services/fetcher/site/xsw ./services/fetcher/site/czbooks; do \
	  for f in $$(go test -list '^Fuzz' $$p | grep ^Fuzz); do \
	    go test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$p || exit 1; done; done

.PHONY: bench
bench: ## Go benchmarks, then the end-to-end harness (dev/bench): writes dev/bench/out/results.json, rewrites BENCHMARKS.md and the README's figures
	@dev/scripts/ensure-postgres.sh
	@mkdir -p dev/bench/out
	@# Only the packages that have benchmarks: compiling the others' tests takes minutes.
	@# The harness runs even when a Go benchmark failed: the report lists the failure.
	@set -o pipefail; status=0; \
	  pkgs=$$(grep -rl --include='*_test.go' --exclude-dir=testdata '^func Benchmark' $(MODULES) | xargs -n1 dirname | sort -u | sed 's|^|./|'); \
	  go test -run '^$$' -bench . -benchmem $$pkgs | tee dev/bench/out/gobench.txt || status=$$?; \
	  go run ./dev/bench -gobench dev/bench/out/gobench.txt || status=$$?; \
	  exit $$status

.PHONY: tidy
tidy: ## go mod tidy in every module
	@for m in $(MODULES); do (cd $$m && go mod tidy); done

.PHONY: clean
clean: ## remove bin/ and the local data directory
	rm -rf $(BIN) data
