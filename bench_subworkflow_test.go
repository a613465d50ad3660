package flowscript_test

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime/metrics"
	"sort"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// percentile of sorted durations, in microseconds.
func percentileMicros(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Nanoseconds()) / 1e3
}

// BenchmarkW3ChildRoundTrip: a parent runs 200 children one after the
// other, each with one no-op step; a round trip is the parent step's
// time from start to end (spawn, the child's run, the notice back).
// Durable mode, real Badger on disk.
func BenchmarkW3ChildRoundTrip(b *testing.B) { forStores(b, benchW3ChildRoundTrip) }

func benchW3ChildRoundTrip(b *testing.B) {
	eng, prog := benchProgram(b, "parent.star", map[string]string{
		"parent.star": w3Parent,
		"leaf.star":   "task(\"noop\", lambda ctx: None)\n",
	})
	ctx := context.Background()
	var trips []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
		if err != nil || rec.Status != "succeeded" {
			b.Fatalf("run: %v %v", err, rec)
		}
		for _, s := range rec.Steps {
			trips = append(trips, s.EndedAt.Sub(*s.StartedAt))
		}
	}
	b.StopTimer()
	sort.Slice(trips, func(i, j int) bool { return trips[i] < trips[j] })
	b.ReportMetric(percentileMicros(trips, 0.5), "median-µs/child")
	b.ReportMetric(percentileMicros(trips, 0.99), "p99-µs/child")
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*200), "µs/child-overall")
}

// BenchmarkW4Depth3: a root runs a child that runs a grandchild with one
// no-op step; the figure is the time from Start until the root ended.
func BenchmarkW4Depth3(b *testing.B) { forStores(b, benchW4Depth3) }

func benchW4Depth3(b *testing.B) {
	eng, prog := benchProgram(b, "root.star", map[string]string{
		"root.star": "sub_workflow(\"mid\")\n",
		"mid.star":  "sub_workflow(\"leaf\")\n",
		"leaf.star": "task(\"noop\", lambda ctx: None)\n",
	})
	ctx := context.Background()
	trees := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
		if err != nil || rec.Status != "succeeded" {
			b.Fatalf("run: %v %v", err, rec)
		}
		trees = append(trees, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(trees, func(i, j int) bool { return trees[i] < trees[j] })
	b.ReportMetric(percentileMicros(trees, 0.5), "median-µs/tree")
	b.ReportMetric(percentileMicros(trees, 0.99), "p99-µs/tree")
}

func writeWorkspaceB(b *testing.B, files map[string]string) string {
	b.Helper()
	dir := b.TempDir()
	for name, src := range files {
		if err := writeFile(filepath.Join(dir, name), src); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// benchProgram writes a workspace, opens a durable engine on a database
// on disk (closed when the benchmark ends) and loads root from it.
func benchProgram(b *testing.B, root string, files map[string]string) (*flowscript.Engine, *flowscript.Program) {
	b.Helper()
	ws := writeWorkspaceB(b, files)
	eng := openBench(b, flowscript.Options{})
	prog, err := eng.LoadFile(context.Background(), filepath.Join(ws, root), flowscript.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return eng, prog
}

// w3Parent runs 200 children one after the other.
const w3Parent = "prev = None\nfor i in range(200):\n    prev = sub_workflow(\"leaf\", id = \"c%d\" % i, after = [prev] if prev else [])\n"

// runEach runs prog b.N times, each to its successful end.
func runEach(b *testing.B, eng *flowscript.Engine, prog *flowscript.Program) {
	b.Helper()
	for i := 0; i < b.N; i++ {
		rec, err := eng.Run(context.Background(), prog, flowscript.RunOptions{})
		if err != nil || rec.Status != "succeeded" {
			b.Fatalf("run: %v %v", err, rec)
		}
	}
}

// BenchmarkW3EndToEnd is W3 measured as other engines measure it: from
// the parent's creation until the parent ended, 200 children one after
// the other, each with one no-op step.
func BenchmarkW3EndToEnd(b *testing.B) { forStores(b, benchW3EndToEnd) }

func benchW3EndToEnd(b *testing.B) {
	const children = 200
	eng, prog := benchProgram(b, "parent.star", map[string]string{
		"parent.star": w3Parent,
		"leaf.star":   "task(\"noop\", lambda ctx: None)\n",
	})
	b.ResetTimer()
	runEach(b, eng, prog)
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/parent")
	b.ReportMetric(float64(b.N*children)/b.Elapsed().Seconds(), "children/s")
}

// BenchmarkW5FanOut: one parent whose children, each with one no-op
// step, are all ready at once; from the parent's creation until it ended.
// It reports children per second and the peaks of the heap (live, and
// with the garbage not yet collected).
func BenchmarkW5FanOut(b *testing.B) { forStores(b, benchW5FanOut) }

func benchW5FanOut(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("children=%d", n), func(b *testing.B) {
			src := fmt.Sprintf("for i in range(%d):\n    sub_workflow(\"leaf\", id = \"c%%d\" %% i)\n", n)
			eng, prog := benchProgram(b, "parent.star", map[string]string{
				"parent.star": src,
				"leaf.star":   "task(\"noop\", lambda ctx: None)\n",
			})
			peak := watchHeap()
			b.ResetTimer()
			runEach(b, eng, prog)
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "children/s")
			live, objects := peak()
			b.ReportMetric(float64(live)/(1<<20), "peak-live-heap-MiB")
			b.ReportMetric(float64(objects)/(1<<20), "peak-heap-objects-MiB")
		})
	}
}

// watchHeap samples the heap until the returned function is called,
// which returns the peaks of the live heap (as of each GC's mark) and of
// all heap objects (live and garbage not yet swept, which GOGC=100 lets
// grow to about twice the live heap).
func watchHeap() func() (live, objects uint64) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	stop := make(chan struct{})
	done := make(chan [2]uint64)
	go func() {
		var peak [2]uint64
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak[0] = max(peak[0], sample[0].Value.Uint64())
			peak[1] = max(peak[1], sample[1].Value.Uint64())
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(stop)
		p := <-done
		return p[0], p[1]
	}
}
