package flowscript_test

// The store dimension of the W-benchmarks: each runs as a sub-benchmark
// per store, store=badger (a durable Badger database on disk) and
// store=nats (a durable natsstore stream on one in-process JetStream
// server with sync_always) and store=nats-r3 (an R3 stream on a cluster
// of three in-process JetStream servers routed over loopback; a commit
// is acknowledged once two of them have it), the servers shared by the
// benchmarks of the test binary, so that `-bench W2` runs all three in
// the same process and the figures are read as ratios:
//
//	go test -run '^$' -bench 'W1|W2' -benchtime 20x -count 3 .
//
// -bench 'W2/store=badger' picks one (-bench 'W2/store=nats$' the
// single node). The engine runs on the store as
// the library would (flowscript.New), without the CLI's ownership lease.
// On NATS it runs 256 workers, Badger the default 32 (Options.Workers;
// the CLI's --workers): a worker waits for the commit of its step's end,
// on NATS that wait is most of its time, and the committer can only
// batch as many step ends as there are workers waiting.
// FLOWSCRIPT_BENCH_NATS_WORKERS=32 measures NATS with the default.

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/store/natsstore"
	"github.com/flowscript/flowscript/store/natsstore/natstest"
)

// benchStores are the stores each W-benchmark runs on.
var benchStores = []string{"badger", "nats", "nats-r3"}

// benchStore is the store of the sub-benchmark running now (benchmarks
// run one at a time).
var benchStore = "badger"

// forStores runs body once per store, as sub-benchmarks store=NAME.
func forStores(b *testing.B, body func(b *testing.B)) {
	for _, name := range benchStores {
		b.Run("store="+name, func(b *testing.B) {
			benchStore = name
			defer func() { benchStore = "badger" }()
			body(b)
		})
	}
}

// openBench opens a durable engine on a fresh database of the current
// store; closed when the benchmark ends.
func openBench(b *testing.B, opts flowscript.Options) *flowscript.Engine {
	b.Helper()
	var eng *flowscript.Engine
	var err error
	switch benchStore {
	case "badger":
		eng, err = flowscript.Open(b.TempDir(), opts)
	case "nats", "nats-r3":
		if opts.Workers == 0 {
			opts.Workers = 256
			if n, err := strconv.Atoi(os.Getenv("FLOWSCRIPT_BENCH_NATS_WORKERS")); err == nil && n > 0 {
				opts.Workers = n
			}
		}
		var st *natsstore.Store
		name := fmt.Sprintf("bench%d", benchStreams.Add(1))
		o := natsstore.Options{Server: benchNATS(b), Stream: name}
		if benchStore == "nats-r3" {
			o.Server, o.Replicas = benchCluster(b), 3
		}
		b.Cleanup(func() { deleteBenchStream(o.Server, name) })
		st, err = natsstore.Open(o)
		if err == nil {
			eng, err = flowscript.New(st, opts)
			if err != nil {
				st.Close()
			}
		}
	default:
		b.Fatalf("unknown store %q", benchStore)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	return eng
}

// TestMain stops the benchmarks' JetStream servers, if any started, and
// removes their directories.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchNATSSrv != nil {
		natstest.Shutdown([]*natsserver.Server{benchNATSSrv})
	}
	natstest.Shutdown(benchClusterSrvs)
	for _, d := range benchDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// benchDirs are the directories the benchmarks' servers store in.
var benchDirs []string

var (
	benchNATSOnce    sync.Once
	benchNATSSrv     *natsserver.Server
	benchNATSErr     error
	benchClusterOnce sync.Once
	benchClusterSrvs []*natsserver.Server
	benchClusterErr  error
	benchStreams     atomic.Int64
)

// benchNATS is the test binary's JetStream server (sync_always, file
// store in a directory of its own), started on first use.
func benchNATS(b *testing.B) *natsserver.Server {
	benchNATSOnce.Do(func() {
		var dir string
		if dir, benchNATSErr = os.MkdirTemp("", "flowscript-bench-nats-"); benchNATSErr == nil {
			benchDirs = append(benchDirs, dir)
			benchNATSSrv, benchNATSErr = natstest.Start(dir, natstest.Options{SyncAlways: true})
		}
	})
	if benchNATSErr != nil {
		b.Fatal(benchNATSErr)
	}
	return benchNATSSrv
}

// benchCluster is the test binary's cluster of three JetStream servers
// (file stores, sync_always, as `flowscript nats` runs by default),
// started on first use. The benchmarks' stores connect to the first.
func benchCluster(b *testing.B) *natsserver.Server {
	benchClusterOnce.Do(func() {
		var dir string
		if dir, benchClusterErr = os.MkdirTemp("", "flowscript-bench-nats-r3-"); benchClusterErr == nil {
			benchDirs = append(benchDirs, dir)
			benchClusterSrvs, benchClusterErr = natstest.StartCluster(dir, 3, natstest.Options{SyncAlways: true})
		}
	})
	if benchClusterErr != nil {
		b.Fatal(benchClusterErr)
	}
	return benchClusterSrvs[0]
}

// deleteBenchStream deletes a benchmark's stream (its database) once
// the benchmark is done with it.
func deleteBenchStream(srv *natsserver.Server, name string) {
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js.DeleteStream(ctx, name)
}
