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

# Unit, golden, end-to-end and fuzz-seed tests, plus formatting and vet;
# then the NATS failover tests (3 rounds each) on their own, verbose, so
# that their summaries (the takeover times) are shown; all of their
# output when one fails.
test: fmt-check vet
	$(GO) test -count=1 -skip 'TestNATSFailover|TestNATSCluster' ./...
	@log=$$(mktemp); $(GO) test -count=1 -v -run 'TestNATSFailover|TestNATSCluster' ./internal/crashtest/ >$$log 2>&1; s=$$?; \
	if [ $$s -eq 0 ]; then grep -E -- '^(--- |ok )| rounds[:,]' $$log; else cat $$log; fi; rm -f $$log; exit $$s

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The reliability suite in full (long, not in CI): kill -9 crash tests at
# random moments with 200 rounds each (50 for the for_each, 2,000-child
# spawn and timeout ones, whose rounds take seconds), 500 rounds of kill -9
# at failpoints (during runs, reruns and cancels), damaged databases, hostile
# scripts, secret canaries and the load test, ending with a table of figures;
# then the NATS failover tests (one server; a 3-node cluster: the owner
# killed, a node killed) with 30 rounds. make test runs a short slice of the
# same tests.
.PHONY: reliability
reliability:
	FLOWSCRIPT_RELIABILITY_ROUNDS=200 FLOWSCRIPT_HEAVY_ROUNDS=50 FLOWSCRIPT_FAILPOINT_ROUNDS=500 $(GO) test -count=1 -timeout 90m -skip 'TestNATSFailover|TestNATSCluster' -v ./internal/crashtest/
	FLOWSCRIPT_RELIABILITY_ROUNDS=30 $(GO) test -count=1 -timeout 30m -run 'TestNATSFailover|TestNATSCluster' -v ./internal/crashtest/
	$(GO) test -count=10 -run 'TestConformanceR3|TestWatchWholeBatchesOnAReplicaBehind' ./store/natsstore/

# Fuzz each parser-shaped entry point for FUZZTIME (default 10m), one at a
# time and on one worker: script loading, the stored-record decoders, the
# holder protocol (its answers and its requests).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) -parallel 1 ./lang
	$(GO) test -run '^$$' -fuzz FuzzRecordDecoders -fuzztime $(FUZZTIME) -parallel 1 ./runtime/journal
	$(GO) test -run '^$$' -fuzz FuzzHolderAnswers -fuzztime $(FUZZTIME) -parallel 1 ./cmd/flowscript
	$(GO) test -run '^$$' -fuzz FuzzHolderRequests -fuzztime $(FUZZTIME) -parallel 1 ./cmd/flowscript
	$(GO) test -run '^$$' -fuzz FuzzMasker -fuzztime $(FUZZTIME) -parallel 1 ./internal/mask
	$(GO) test -run '^$$' -fuzz FuzzSubjectEncoding -fuzztime $(FUZZTIME) -parallel 1 ./store/natsstore

clean:
	rm -rf bin
