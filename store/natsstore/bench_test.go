package natsstore_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
	"github.com/flowscript/flowscript/store/natsstore"
)

// benchUpdates measures Updates of keys fresh keys each (no conflicts),
// from committers goroutines at once, and reports transactions and keys
// per second. With keys 1 it is the work of store/badgerstore's
// benchmarks of the same names.
func benchUpdates(b *testing.B, s store.Store, keys, committers int) {
	defer s.Close()
	value := make([]byte, 100)
	var next atomic.Uint64
	commit := func() {
		first := next.Add(uint64(keys)) - uint64(keys)
		err := s.Update(context.Background(), func(tx store.Tx) error {
			for k := range uint64(keys) {
				if err := tx.Set(binary.BigEndian.AppendUint64([]byte("bench/"), first+k), value); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Error(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	var ops atomic.Int64
	var wg sync.WaitGroup
	for range committers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ops.Add(1) <= int64(b.N) {
				commit()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
	b.ReportMetric(float64(elapsed.Microseconds())/float64(b.N), "µs/commit")
	if keys > 1 {
		b.ReportMetric(float64(b.N*keys)/elapsed.Seconds(), "keys/s")
	}
}

// openBench opens a Store on a JetStream server of its own in b.TempDir()
// (in-process, R1 file store; sync_always when durable), or a Badger
// store there.
func openBench(b *testing.B, backend string, durable bool) store.Store {
	var s store.Store
	var err error
	switch {
	case backend == "badger" && durable:
		s, err = badgerstore.Open(b.TempDir(), badgerstore.Options{Durability: badgerstore.Durable})
	case backend == "badger":
		s, err = badgerstore.Open(b.TempDir(), badgerstore.Options{Durability: badgerstore.Fast})
	case durable:
		s, err = natsstore.Open(natsstore.Options{Dir: b.TempDir(), Durability: natsstore.Durable})
	default:
		s, err = natsstore.Open(natsstore.Options{Dir: b.TempDir(), Durability: natsstore.Fast})
	}
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkSyncedCommit: one committer, durable (sync_always: each
// message synced). A one-key transaction is one plain publish.
func BenchmarkSyncedCommit(b *testing.B) { benchUpdates(b, openBench(b, "nats", true), 1, 1) }

// BenchmarkSyncedCommitParallel: 64 concurrent committers, durable.
// JetStream does not group concurrent publishes into one sync.
func BenchmarkSyncedCommitParallel(b *testing.B) { benchUpdates(b, openBench(b, "nats", true), 1, 64) }

// BenchmarkFastCommit: one committer, the file store's default two-minute
// sync interval.
func BenchmarkFastCommit(b *testing.B) { benchUpdates(b, openBench(b, "nats", false), 1, 1) }

// BenchmarkFastCommitParallel: 64 concurrent committers, no sync.
func BenchmarkFastCommitParallel(b *testing.B) { benchUpdates(b, openBench(b, "nats", false), 1, 64) }

// BenchmarkSyncedTxn compares, in one run, synced transactions of several
// keys on both stores, from one committer as the runtime's committer is:
// 3 keys is one transition (state, history event, notice), 300 keys a
// committer's group of 100 transitions. On JetStream each is one atomic
// batch.
func BenchmarkSyncedTxn(b *testing.B) { benchTxn(b, true) }

// BenchmarkFastTxn is BenchmarkSyncedTxn without syncs (Badger Fast,
// JetStream without sync_always). JetStream still syncs the temporary
// store in which an R1 file stream stages each atomic batch.
func BenchmarkFastTxn(b *testing.B) { benchTxn(b, false) }

func benchTxn(b *testing.B, durable bool) {
	for _, keys := range []int{3, 300} {
		for _, backend := range []string{"badger", "nats"} {
			b.Run(fmt.Sprintf("keys=%d/%s", keys, backend), func(b *testing.B) {
				benchUpdates(b, openBench(b, backend, durable), keys, 1)
			})
		}
	}
}
