package natsstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/natsstore"
	"github.com/flowscript/flowscript/store/natsstore/natstest"
	"github.com/flowscript/flowscript/store/storetest"
)

// TestConformanceR3 runs the conformance suite on R3 streams of a
// cluster of three in-process servers on loopback, each Store connected
// to one of the three in turn (mostly a follower of its stream, whose
// direct gets its own replica answers, and which may lag behind the
// leader that took the commits): the snapshot and read-your-writes
// checks of the suite then hold only if a lagging replica's answers are
// recognized and asked again.
func TestConformanceR3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of three servers")
	}
	srvs, err := natstest.StartCluster(t.TempDir(), 3, natstest.Options{MaxBatch: testMaxBatch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { natstest.Shutdown(srvs) })
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		i := n.Add(1)
		s, err := natsstore.Open(natsstore.Options{
			Server: srvs[i%3], Stream: fmt.Sprintf("R%d", i), Replicas: 3,
			MaxBatch: testMaxBatch, Durability: natsstore.Durable,
		})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s
	})
}
