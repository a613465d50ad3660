package flowscript_test

// The store dimension of the W-benchmarks: each runs as a sub-benchmark
// per store, store=badger (a durable Badger database on disk) and
// store=nats (a durable natsstore stream on one in-process JetStream
// server with sync_always, shared by the benchmarks of the test binary),
// so that `-bench W2` runs both in the same process and the figures are
// read as ratios:
//
//	go test -run '^$' -bench 'W1|W2' -benchtime 20x -count 3 .
//
// -bench 'W2/store=badger' picks one. The engine runs on the store as
// the library would (flowscript.New), without the CLI's ownership lease,
// with the CLI's default workers on NATS (natsWorkers: a worker waits
// for the commit of its step's end, and on NATS that wait is most of its
// time); FLOWSCRIPT_BENCH_NATS_WORKERS=32 measures it with the library's
// default.

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
)

// benchStores are the stores each W-benchmark runs on.
var benchStores = []string{"badger", "nats"}

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
	case "nats":
		if opts.Workers == 0 {
			opts.Workers = 256
			if n, err := strconv.Atoi(os.Getenv("FLOWSCRIPT_BENCH_NATS_WORKERS")); err == nil && n > 0 {
				opts.Workers = n
			}
		}
		var st *natsstore.Store
		name := fmt.Sprintf("bench%d", benchStreams.Add(1))
		b.Cleanup(func() { deleteBenchStream(name) })
		st, err = natsstore.Open(natsstore.Options{Server: benchNATS(b), Stream: name})
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

var (
	benchNATSOnce sync.Once
	benchNATSSrv  *natsserver.Server
	benchNATSErr  error
	benchStreams  atomic.Int64
)

// benchNATS is the test binary's JetStream server (sync_always, file
// store in a directory of its own), started on first use.
func benchNATS(b *testing.B) *natsserver.Server {
	benchNATSOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowscript-bench-nats-")
		if err != nil {
			benchNATSErr = err
			return
		}
		srv, err := natsserver.NewServer(&natsserver.Options{
			JetStream: true, StoreDir: dir, DontListen: true, NoLog: true, NoSigs: true,
			SyncAlways: true, MaxPayload: 8 << 20,
		})
		if err != nil {
			benchNATSErr = err
			return
		}
		go srv.Start()
		if !srv.ReadyForConnections(30 * time.Second) {
			benchNATSErr = fmt.Errorf("the JetStream server did not start")
			return
		}
		benchNATSSrv = srv
	})
	if benchNATSErr != nil {
		b.Fatal(benchNATSErr)
	}
	return benchNATSSrv
}

// deleteBenchStream deletes a benchmark's stream (its database) once
// the benchmark is done with it.
func deleteBenchStream(name string) {
	nc, err := nats.Connect("", nats.InProcessServer(benchNATSSrv))
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
