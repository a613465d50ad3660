package flowscript_test

// Benchmarks of the engine in durable mode on a real Badger database on
// disk (issue "Durable runs on Badger", section "How it is proven"):
//
//	go test -run '^$' -bench 'W1|W2|Synced|MemoryFlat' -benchtime 20x -count 3 .
//
// W1 is a chain of no-op Starlark steps (one step at a time, so every step
// waits for the synced commit of its predecessor's end), W2 a fan-out of
// independent no-op steps and a join. SyncedCommit is the raw rate of
// synced Badger commits on the same disk, for the engine's overhead as a
// ratio. MemoryFlat reports the heap after 100 and after 300 finished runs.

import (
	"context"
	"encoding/binary"
	"fmt"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// chainScript declares n no-op Starlark steps, each after the previous one.
func chainScript(n int) string {
	return fmt.Sprintf(`
workflow(name = "w1-chain")

def noop(ctx):
    return None

prev = task("s0", noop)
for i in range(1, %d):
    prev = task("s%%d" %% i, noop, after = [prev])
`, n)
}

// fanoutScript declares n independent no-op steps and one step after all
// of them.
func fanoutScript(n int) string {
	return fmt.Sprintf(`
workflow(name = "w2-fanout")

def noop(ctx):
    return None

fan = [task("f%%d" %% i, noop) for i in range(%d)]
task("join", noop, after = fan)
`, n)
}

// benchEngine opens a durable engine on a fresh on-disk database and loads
// one program into it.
func benchEngine(b *testing.B, src string) (*flowscript.Engine, *flowscript.Program) {
	b.Helper()
	eng := openBench(b, flowscript.Options{Durability: flowscript.Durable})
	prog, err := eng.LoadString(context.Background(), "bench.star", src)
	if err != nil {
		b.Fatal(err)
	}
	return eng, prog
}

// runOnce starts one run and waits for it; it must succeed.
func runOnce(b *testing.B, eng *flowscript.Engine, prog *flowscript.Program) {
	ctx := context.Background()
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{})
	if err != nil {
		b.Error(err)
		return
	}
	rec, err := eng.Wait(ctx, id)
	if err != nil {
		b.Error(err)
		return
	}
	if rec.Status != "succeeded" {
		b.Errorf("run %s ended %s: %v", id, rec.Status, rec.Error)
	}
}

// benchRuns does b.N iterations of `parallel` concurrent runs of a
// workflow of `steps` steps, and reports steps/s and allocations per step.
func benchRuns(b *testing.B, src string, steps, parallel int) {
	eng, prog := benchEngine(b, src)
	runOnce(b, eng, prog) // warm up: register the definition, open the files
	b.ReportAllocs()
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if parallel == 1 {
			runOnce(b, eng, prog)
			continue
		}
		var wg sync.WaitGroup
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runOnce(b, eng, prog)
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	goruntime.ReadMemStats(&after)
	total := float64(b.N * parallel * steps)
	b.ReportMetric(total/elapsed.Seconds(), "steps/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/total, "allocs/step")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/total, "B/step")
}

// BenchmarkW1Chain100: one run of a 100-step chain per op.
func BenchmarkW1Chain100(b *testing.B) {
	forStores(b, func(b *testing.B) { benchRuns(b, chainScript(100), 100, 1) })
}

// BenchmarkW1Chain100x8: eight runs of the 100-step chain at once per op.
func BenchmarkW1Chain100x8(b *testing.B) {
	forStores(b, func(b *testing.B) { benchRuns(b, chainScript(100), 100, 8) })
}

// BenchmarkW2Fanout1000: 1,000 independent steps and a join per op.
func BenchmarkW2Fanout1000(b *testing.B) {
	forStores(b, func(b *testing.B) { benchRuns(b, fanoutScript(1000), 1001, 1) })
}

// BenchmarkSyncedCommit is the raw rate of small synced Badger commits on
// the disk the other benchmarks use, from one goroutine and from 64 at
// once (Badger groups concurrent commits into shared syncs). An engine
// step on a chain costs at least one synced commit. One op is 100 commits,
// so that -benchtime 20x measures enough of them.
func BenchmarkSyncedCommit(b *testing.B) {
	const commitsPerOp = 100
	for _, committers := range []int{1, 64} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			s, err := badgerstore.Open(b.TempDir(), badgerstore.Options{Durability: badgerstore.Durable})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			value := make([]byte, 200)
			var next, ops atomic.Uint64
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range committers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ops.Add(1) <= uint64(b.N*commitsPerOp) {
						key := binary.BigEndian.AppendUint64([]byte("bench/"), next.Add(1))
						err := s.Update(context.Background(), func(tx store.Tx) error { return tx.Set(key, value) })
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N*commitsPerOp)/elapsed.Seconds(), "commits/s")
		})
	}
}

// memoryScript is a small run: three chained no-op steps.
const memoryScript = `
workflow(name = "small")

def noop(ctx):
    return {"ok": True}

a = task("a", noop)
b = task("b", noop, after = [a])
task("c", noop, inputs = {"x": b.output["ok"]})
`

// heapAfterGC is the heap in use once garbage is collected.
func heapAfterGC() uint64 {
	var ms goruntime.MemStats
	goruntime.GC()
	goruntime.GC()
	goruntime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// heapAfterRuns runs the small workflow `total` times in sequence on one
// durable engine and returns the heap in use after each of the marks.
func heapAfterRuns(tb testing.TB, dir string, total int, marks ...int) []uint64 {
	tb.Helper()
	eng, err := flowscript.Open(dir, flowscript.Options{Durability: flowscript.Durable})
	if err != nil {
		tb.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	prog, err := eng.LoadString(ctx, "small.star", memoryScript)
	if err != nil {
		tb.Fatal(err)
	}
	var heaps []uint64
	for i := 1; i <= total; i++ {
		rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
		if err != nil {
			tb.Fatal(err)
		}
		if rec.Status != "succeeded" {
			tb.Fatalf("run %d ended %s", i, rec.Status)
		}
		for _, m := range marks {
			if i == m {
				heaps = append(heaps, heapAfterGC())
			}
		}
	}
	return heaps
}

// BenchmarkMemoryFlat reports the heap in use after 100 and after 300
// finished runs on one engine: it must not grow with finished runs.
func BenchmarkMemoryFlat(b *testing.B) {
	for range b.N {
		heaps := heapAfterRuns(b, b.TempDir(), 300, 100, 300)
		b.ReportMetric(float64(heaps[0])/(1<<20), "heapMB@100")
		b.ReportMetric(float64(heaps[1])/(1<<20), "heapMB@300")
	}
}

// TestMemoryFlatAcrossRuns: 200 more finished runs must not grow the heap
// by more than a generous bound (finished runs are forgotten; Badger's
// caches are bounded).
func TestMemoryFlatAcrossRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("300 durable runs")
	}
	heaps := heapAfterRuns(t, t.TempDir(), 300, 100, 300)
	const bound = 20 << 20
	t.Logf("heap in use after 100 runs %.1f MiB, after 300 runs %.1f MiB", float64(heaps[0])/(1<<20), float64(heaps[1])/(1<<20))
	if heaps[1] > heaps[0] && heaps[1]-heaps[0] > bound {
		t.Fatalf("the heap grew by %.1f MiB from run 100 to run 300 (bound %d MiB)", float64(heaps[1]-heaps[0])/(1<<20), bound>>20)
	}
}
