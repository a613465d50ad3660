# flowscript — build, test, benchmark.
GO ?= go
BIN := bin/flowscript
FUZZTIME ?= 10m

.PHONY: all build demo test vet fmt-check bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/flowscript

# The main job: run the example deploy pipeline (a parent with a blocking
# and a detached child) on the embedded Badger database in ./.flowscript,
# then show its run tree.
demo: build
	$(BIN) validate $$(ls examples/*.star | grep -v _test.star)
	DEPLOY_TOKEN=demo-token $(BIN) run examples/deploy-pipeline.star
	$(BIN) tree $$($(BIN) runs -q --limit 1 --workflow deploy-pipeline)

# Unit, golden, end-to-end and fuzz-seed tests, plus formatting and vet.
test: fmt-check vet
	$(GO) test -count=1 ./...

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Kill -9 crash test with many rounds (the default go test runs 30), and the
# NATS failover test with 30 (the default go test runs 3).
.PHONY: reliability
reliability:
	FLOWSCRIPT_RELIABILITY_ROUNDS=200 $(GO) test -count=1 -timeout 30m -run TestCrash -v ./internal/crashtest/
	FLOWSCRIPT_RELIABILITY_ROUNDS=30 $(GO) test -count=1 -timeout 30m -run TestNATSFailover -v ./internal/crashtest/

# Fuzz script loading for FUZZTIME (default 10m).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./lang

clean:
	rm -rf bin
