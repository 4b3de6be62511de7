# jwtd — see README.md. `make run` serves with the embedded defaults;
# `make test` is what CI runs.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
# make build's settings, for every build but the race tests' (FerretDB,
# vet, staticcheck and the fuzz pass too: see test). -trimpath goes in
# GOFLAGS, so that the go commands a tool runs itself use it too:
# staticcheck's go list -export compiled every package a second time
# without it.
BUILDENV    := CGO_ENABLED=0 GOFLAGS=-trimpath
# The tests' builds: no vet of their own (make lint vets every package,
# with every analyzer), and test binaries linked without DWARF (a quarter
# less CPU a link; a run links some 40).
TESTFLAGS   := -vet=off -ldflags=-w
# Fuzz budgets are counts, not durations: with a duration, Go 1.26's fuzz
# coordinator can report a spurious "context deadline exceeded" when the
# time runs out mid-execution (golang/go#75804, fixed in Go 1.27).
FUZZTIME    ?= 200000x
FUZZWORKERS ?= $(shell nproc 2>/dev/null || echo 2)
# How long the fuzzer minimizes each new input (go test's default, 60s).
FUZZMINIMIZE ?= 60s

.PHONY: all build run test deps lint ferretdb race fuzz-pass bench soak fuzz clean

all: build

# The banner only before the first build: a cached build takes a second.
build:
	@[ -e bin/jwtd ] || echo "building bin/jwtd for the first time: with empty Go caches go downloads ~45 modules and compiles SQLite and the MongoDB driver, about 4 minutes on 2 cores (longer on a busy machine); each package is named as it compiles"
	$(BUILDENV) $(GO) build -v -ldflags '$(LDFLAGS)' -o bin/jwtd ./cmd/jwtd

# make run ARGS="--listen 127.0.0.1:9090": the same build as make build, so
# neither compiles again after the other. On a terminal, jwtd runs as its own
# job (set -m), so that Ctrl-C reaches jwtd alone: it shuts down cleanly and
# make exits 0, instead of make dying of the same SIGINT.
run: build
	@if [ -t 0 ]; then set -m; fi; ./bin/jwtd serve $(ARGS)

# Three jobs on one jobserver: lint, the race tests and the fuzz pass. The
# end-to-end tests mostly wait on processes, timers and failovers, and the
# other two fill that time. FerretDB is built before lint and the race
# tests (they start it), beside the fuzz pass's first build: FerretDB, vet,
# staticcheck and jwtd's binary compile in one configuration (BUILDENV,
# with tools/ferretdb's shared modules at jwtd's versions), so from a fresh
# clone each package compiles once for all of them, and never in two go
# commands at the same time.
test: deps
	$(MAKE) -j3 lint race fuzz-pass

# FerretDB without its PostgreSQL backend (pgx and 30 other packages to
# compile): the tests run it on SQLite.
FERRETDBTAGS := ferretdb_no_postgresql
ferretdb:
	@mkdir -p bin
	cd tools/ferretdb && $(BUILDENV) $(GO) build -tags $(FERRETDBTAGS) -o ../../bin/ferretdb .

# Debian packages the tests drive (installed only when missing).
deps:
	@scripts/ensure-packages.sh curl python3-jwt chromium sqlite3 redis-server redis-sentinel redis-tools

lint: ferretdb
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(BUILDENV) $(GO) vet ./...
	$(BUILDENV) $(GO) run $(STATICCHECK) ./...

# The tests beside a short pass of every fuzz target (see test). -parallel
# 4: the tests marked parallel (their own processes, servers and ports)
# mostly wait, so more of them than the 2 CPUs run at once.
race: ferretdb
	scripts/with-test-services.sh $(GO) test $(TESTFLAGS) -race -count=1 -parallel 4 -timeout 30m ./...

# Its new inputs are minimized for at most 100 runs each: minimizing at
# go test's default of up to a minute each made FuzzNativeRoutes take 35-41 s
# instead of 20-21 s, and vary from run to run.
fuzz-pass:
	$(MAKE) fuzz FUZZTIME=20000x FUZZWORKERS=1 FUZZMINIMIZE=100x

# Go benchmarks (sign, verify, group commit), the audit trail's cost on the
# keyed minting route, the CPU, memory and latency budgets of jwtd under
# expensive requests, then wrk against jwtd and the bare net/http floor on
# loopback, in the same run. The trail's cost: POST /v1/tokens without the
# trail and with it, in turns within one process (CPU per token of each,
# and on/off, and the ratio of their rates, the collector as jwtd serve
# sets it), five runs of 20,000 tokens each, as docs/benchmarks.md
# reports them; jwtd has no switch that
# turns the trail off, so wrk measures the route with it.
bench:
	@scripts/ensure-packages.sh wrk curl
	scripts/with-test-services.sh $(GO) test -run '^$$' -bench . -skip '^BenchmarkKeyedMintTrailCost$$' -benchmem ./internal/...
	$(GO) test -run '^$$' -bench '^BenchmarkKeyedMintTrailCost$$' -benchtime 20000x -count 5 ./internal/httpapi
	$(GO) test -count=1 -v -run '^TestExpensiveRequestsStayBounded$$' ./cmd/jwtd -args -budgets
	bench/run.sh

# jwtd at a steady rate on the phone route for SOAK (30m), retention
# purging all along; fails when memory, goroutines, open files or p99 drift,
# or a token acknowledged was not committed. SOAK_RATE: requests a second.
SOAK      ?= 30m
SOAK_RATE ?= 2000
soak: build
	$(GO) run ./bench/soak --jwtd bin/jwtd --duration $(SOAK) --rate $(SOAK_RATE)

# Each fuzz target for FUZZTIME (go test runs one -fuzz target at a time).
# The targets are read from the test files, not listed by go test -list,
# which compiled every package's tests once more only to name them. In
# make build's configuration: the packages go test does not instrument
# for fuzzing (runtime, reflect, testing, …) are then make build's.
fuzz:
	@set -e; for dir in $$(grep -l '^func Fuzz' $$(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go') | xargs -n1 dirname | sort -u); do \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | sed 's/^func //'); do \
	    echo "fuzz ./$$dir $$t"; \
	    $(BUILDENV) $(GO) test $(TESTFLAGS) -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) -parallel $(FUZZWORKERS) ./$$dir; \
	  done; \
	done

clean:
	rm -rf bin jwtd-data
