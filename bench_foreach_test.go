package flowscript_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/flowscript/flowscript"
)

// BenchmarkForEach: one for_each step over n items, one child run per
// item with one no-op step; from the parent's creation until it ended,
// durable mode, real Badger on disk (SPEC §4b, issue 13). It reports
// children per second, milliseconds per fan-out and the peaks of the heap
// (live, and with the garbage not yet collected).
func BenchmarkForEach(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("children=%d", n), func(b *testing.B) {
			src := fmt.Sprintf("for_each(\"load\", items = list(range(%d)), workflow = \"leaf\", inputs = lambda i: {\"i\": i})\n", n)
			eng, prog := benchProgram(b, "parent.star", map[string]string{
				"parent.star": src,
				"leaf.star":   "workflow(params = {\"i\": 0})\ntask(\"noop\", lambda ctx: None)\n",
			})
			peak := watchHeap()
			b.ResetTimer()
			runEach(b, eng, prog)
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "children/s")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/fan-out")
			st := eng.Stats()
			b.ReportMetric(float64(st.Transactions)/float64(b.N), "txns/fan-out")
			b.ReportMetric(float64(st.Commits)/float64(b.N), "commits/fan-out")
			live, objects := peak()
			b.ReportMetric(float64(live)/(1<<20), "peak-live-heap-MiB")
			b.ReportMetric(float64(objects)/(1<<20), "peak-heap-objects-MiB")
		})
	}
}

// BenchmarkForEachRead: reading a finished for_each parent of n
// children back, as show and Run's record do (Get: the n iteration
// records decoded from the children), and as a poll does (Status: the
// run's own record).
func BenchmarkForEachRead(b *testing.B) {
	const n = 10000
	src := fmt.Sprintf("for_each(\"load\", items = list(range(%d)), workflow = \"leaf\", inputs = lambda i: {\"i\": i})\n", n)
	eng, prog := benchProgram(b, "parent.star", map[string]string{
		"parent.star": src,
		"leaf.star":   "workflow(params = {\"i\": 0})\ntask(\"noop\", lambda ctx: None)\n",
	})
	ctx := context.Background()
	rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
	if err != nil || rec.Status != flowscript.RunSucceeded {
		b.Fatalf("run: %v %v", err, rec)
	}
	b.Run("get", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			got, err := eng.Get(ctx, rec.ID)
			if err != nil || len(got.Steps) != n+1 {
				b.Fatalf("get: %v", err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/child")
	})
	b.Run("status", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if st, err := eng.Status(ctx, rec.ID); err != nil || st != flowscript.RunSucceeded {
				b.Fatalf("status: %v %v", st, err)
			}
		}
	})
}
