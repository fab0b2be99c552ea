# xsw: run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

MODULES  := . platform services/fetcher services/gateway services/indexer dev deploy
PKGS     := github.com/xswtw/xsw/...
BIN      := bin
GOFLAGS_TEST ?= -race -count=1 -timeout 15m

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
test: ## formatting, vet, tidiness, then every test with -race (needs Postgres and Chromium; provides them)
	@dev/scripts/ensure-postgres.sh
	@dev/scripts/ensure-chromium.sh
	@$(MAKE) --no-print-directory check
	go test $(GOFLAGS_TEST) $$(go list $(PKGS) | grep -v -e /dev/e2e -e /dev/chaos)
	@# The end-to-end tests run real processes and measure rates: alone, after the rest.
	go test $(GOFLAGS_TEST) github.com/xswtw/xsw/dev/e2e
	@$(MAKE) --no-print-directory test-chaos

.PHONY: test-chaos
test-chaos: ## the chaos suite: processes killed, cut off and fed bad input (docs/reliability.md)
	@dev/scripts/ensure-postgres.sh
	@# -v: each scenario logs what it injected and measured.
	go test $(GOFLAGS_TEST) -v github.com/xswtw/xsw/dev/chaos

.PHONY: check
check: ## gofmt, go vet and go mod tidy must leave nothing to change
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet $(PKGS)
	@for m in $(MODULES); do (cd $$m && go mod tidy -diff >/dev/null) || { echo "go mod tidy changes $$m"; exit 1; }; done

.PHONY: fuzz
fuzz: ## run each fuzz target of the site adapters for FUZZTIME (default 20s)
	@for p in ./services/fetcher/site ./services/fetcher/site/xsw ./services/fetcher/site/czbooks; do \
	  for f in $$(go test -list '^Fuzz' $$p | grep ^Fuzz); do \
	    go test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-20s} $$p || exit 1; done; done

.PHONY: bench
bench: ## Go benchmarks, then the end-to-end harness (dev/bench): rewrites BENCHMARKS.md, dev/bench/results.json and the README's figures
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
