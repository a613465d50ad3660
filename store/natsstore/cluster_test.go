package natsstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
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
	// Known defect, open (issue 15): on a loaded machine a watch on an R3
	// stream once delivered nothing for 20 s (WatchNothingFromBefore, in
	// CI on 2 cores; 8 of 8 passed on a quiet machine). Until it is found,
	// this suite runs in make reliability, not in make test.
	if os.Getenv("FLOWSCRIPT_NATS_R3_CONFORMANCE") == "" {
		t.Skip("set FLOWSCRIPT_NATS_R3_CONFORMANCE=1 (make reliability does) to run the conformance suite on R3")
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

// TestReadsOnAReplicaBehind: four servers, an R3 stream, and a Store
// connected to the server that holds no replica of it, so that its direct
// gets go to any of the three replicas, one of which may not have the
// last commit yet (a commit is acknowledged once two have it; the
// servers sync every write, which widens that window). Each round
// commits a value and reads it back, in a View and in an Update: a
// snapshot answered by the lagging replica would miss the commit.
// Without the anchored reads (read.go, lastAtAnchored) it failed in 5
// of 6 runs here, each time within 1,000 rounds.
func TestReadsOnAReplicaBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of four servers")
	}
	srvs, err := natstest.StartCluster(t.TempDir(), 4, natstest.Options{SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { natstest.Shutdown(srvs) })
	first, err := natsstore.Open(natsstore.Options{Server: srvs[0], Stream: "lag", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	nc, err := nats.Connect("", nats.InProcessServer(srvs[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), "lag")
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hosts := map[string]bool{info.Cluster.Leader: true}
	for _, r := range info.Cluster.Replicas {
		hosts[r.Name] = true
	}
	var outside *server.Server
	for _, srv := range srvs {
		if !hosts[srv.Name()] {
			outside = srv
		}
	}
	if outside == nil || len(hosts) != 3 {
		t.Fatalf("stream lag is on %v; want three of the four servers", hosts)
	}
	s, err := natsstore.Open(natsstore.Options{Server: outside, Stream: "lag", MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := 1; i <= 1000; i++ {
		want := []byte(strconv.Itoa(i))
		if err := s.Update(ctx, func(tx store.Tx) error { return tx.Set([]byte("k"), want) }); err != nil {
			t.Fatalf("round %d: Update: %v", i, err)
		}
		var got []byte
		if err := s.View(ctx, func(tx store.Tx) (err error) { got, err = tx.Get([]byte("k")); return err }); err != nil {
			t.Fatalf("round %d: View: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: View read k = %q after committing %q: a replica behind answered", i, got, want)
		}
		if err := s.Update(ctx, func(tx store.Tx) (err error) {
			got, err = tx.Get([]byte("k"))
			if err != nil {
				return err
			}
			return tx.Set([]byte("seen"), got)
		}); err != nil {
			t.Fatalf("round %d: Update: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("round %d: Update read k = %q after committing %q: a replica behind answered", i, got, want)
		}
	}
}
