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

// benchCommits measures one small Update per op, from committers
// goroutines at once, each writing its own keys (no conflicts): the same
// work as store/badgerstore's benchmark of the same name, on a JetStream
// server of its own in b.TempDir() (in-process, R1 file store; sync_always
// when durable).
func benchCommits(b *testing.B, durability natsstore.Durability, committers int) {
	s, err := natsstore.Open(natsstore.Options{Dir: b.TempDir(), Durability: durability})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := make([]byte, 100)
	var next atomic.Uint64
	commit := func() {
		key := binary.BigEndian.AppendUint64([]byte("bench/"), next.Add(1))
		err := s.Update(context.Background(), func(tx store.Tx) error {
			return tx.Set(key, value)
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
}

// BenchmarkSyncedCommit: one committer, durable (sync_always: each
// message synced).
func BenchmarkSyncedCommit(b *testing.B) { benchCommits(b, natsstore.Durable, 1) }

// BenchmarkSyncedCommitParallel: 64 concurrent committers, durable.
// JetStream does not group concurrent publishes into one sync.
func BenchmarkSyncedCommitParallel(b *testing.B) { benchCommits(b, natsstore.Durable, 64) }

// BenchmarkFastCommit: one committer, the file store's default two-minute
// sync interval.
func BenchmarkFastCommit(b *testing.B) { benchCommits(b, natsstore.Fast, 1) }

// BenchmarkFastCommitParallel: 64 concurrent committers, no sync.
func BenchmarkFastCommitParallel(b *testing.B) { benchCommits(b, natsstore.Fast, 64) }

// BenchmarkSyncedTxn compares, in one run, synced transactions of several
// keys on both stores: 3 keys is one transition (state, history event,
// notice), 300 keys a committer's group of 100 transitions. On JetStream
// these commit as one atomic batch each; one committer, as the runtime's
// committer is.
func BenchmarkSyncedTxn(b *testing.B) { benchTxn(b, true) }

// BenchmarkFastTxn is BenchmarkSyncedTxn without syncs (Badger Fast,
// JetStream without sync_always). JetStream still syncs the temporary
// store in which an R1 file stream stages each atomic batch.
func BenchmarkFastTxn(b *testing.B) { benchTxn(b, false) }

func benchTxn(b *testing.B, durable bool) {
	bd, nd := badgerstore.Durable, natsstore.Durable
	if !durable {
		bd, nd = badgerstore.Fast, natsstore.Fast
	}
	for _, keys := range []int{3, 300} {
		for _, backend := range []string{"badger", "nats"} {
			b.Run(fmt.Sprintf("keys=%d/%s", keys, backend), func(b *testing.B) {
				var s store.Store
				var err error
				if backend == "badger" {
					s, err = badgerstore.Open(b.TempDir(), badgerstore.Options{Durability: bd})
				} else {
					s, err = natsstore.Open(natsstore.Options{Dir: b.TempDir(), Durability: nd})
				}
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				value := make([]byte, 128)
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					err := s.Update(context.Background(), func(tx store.Tx) error {
						for k := 0; k < keys; k++ {
							key := binary.BigEndian.AppendUint64([]byte("bench/"), uint64(i*keys+k))
							if err := tx.Set(key, value); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "txns/s")
				b.ReportMetric(float64(b.N*keys)/elapsed.Seconds(), "keys/s")
			})
		}
	}
}
