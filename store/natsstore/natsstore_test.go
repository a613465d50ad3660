package natsstore_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/natsstore"
	"github.com/flowscript/flowscript/store/natsstore/natstest"
	"github.com/flowscript/flowscript/store/storetest"
)

// testMaxBatch is the shared server's max_batch_size. The conformance
// suite writes up to 3,000 keys in one transaction (ScanManyKeys,
// ContextCancellation); JetStream's default of 1,000 would refuse them.
const testMaxBatch = 4096

// shared is the one JetStream server of this test binary, in-process,
// listening on a loopback port (for the URL tests), with a real file
// store. Each test opens
// its Store on a stream of its own.
var shared *server.Server

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "natsstore-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shared, err = natstest.Start(dir, natstest.Options{MaxBatch: testMaxBatch})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	shared.Shutdown()
	shared.WaitForShutdown()
	os.RemoveAll(dir)
	os.Exit(code)
}

var streams atomic.Int64

// openShared opens a Store on a new stream of the shared server and
// deletes the stream when the test ends.
func openShared(t testing.TB, opts natsstore.Options) *natsstore.Store {
	t.Helper()
	opts.Server = shared
	if opts.Stream == "" {
		opts.Stream = fmt.Sprintf("T%d", streams.Add(1))
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = testMaxBatch
	}
	s, err := natsstore.Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { deleteStream(t, opts.Stream) })
	return s
}

func deleteStream(t testing.TB, name string) {
	nc, err := nats.Connect("", nats.InProcessServer(shared))
	if err != nil {
		t.Errorf("connect: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(context.Background(), name); err != nil {
		t.Errorf("DeleteStream(%s): %v", name, err)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openShared(t, natsstore.Options{Durability: natsstore.Fast})
	})
}

// TestDurable starts a JetStream server of its own (sync_always) in each
// test's directory, and a new one on every reopen.
func TestDurable(t *testing.T) {
	storetest.RunDurable(t, func(t *testing.T, dir string) store.Store {
		s, err := natsstore.Open(natsstore.Options{Dir: dir})
		if err != nil {
			t.Fatalf("Open(Dir %s): %v", dir, err)
		}
		return s
	})
}
