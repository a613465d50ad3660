package crashtest

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime"
	"github.com/flowscript/flowscript/store/badgerstore"
)

const loadStar = `workflow(name = "load")
a = task("a", "work")
b = task("b", "work", after = [a])
c = task("c", "work", after = [a])
task("d", "work", after = [b, c])
`

// TestLoad keeps 1,000 runs in flight on one engine (a real Badger on
// disk) for 60 s, with random cancels, reruns of ended runs and reads.
// Then: every run ends within 60 s, no ended run moves again, every
// history is contiguous and every link consistent; peak RSS is reported.
// Only in make reliability (FLOWSCRIPT_RELIABILITY_ROUNDS set);
// FLOWSCRIPT_LOAD_SECONDS and FLOWSCRIPT_LOAD_RUNS change its size.
func TestLoad(t *testing.T) {
	if os.Getenv("FLOWSCRIPT_RELIABILITY_ROUNDS") == "" {
		t.Skip("a minute of load: make reliability runs it")
	}
	seconds, inFlight := envInt("FLOWSCRIPT_LOAD_SECONDS", 60), envInt("FLOWSCRIPT_LOAD_RUNS", 1000)
	bs, err := badgerstore.Open(t.TempDir(), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	e := runtime.New(bs, runtime.Options{Workers: 64})
	defer e.Close()
	e.RegisterHandler("work", func(ctx context.Context, tc *runtime.TaskContext) (map[string]any, error) {
		select {
		case <-time.After(time.Duration(rand.IntN(50)) * time.Millisecond):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return map[string]any{"n": tc.Attempt}, nil
	})
	ctx := context.Background()
	ws := lang.NewWorkspaceFiles(map[string][]byte{"load.star": []byte(loadStar)}, e.LangOptions())
	prog, err := ws.Load(ctx, "load.star")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu                              sync.Mutex
		ids                             []string
		started, cancels, reruns, reads atomic.Int64
		errorsSeen                      atomic.Int64
	)
	stop := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	for w := 0; w < inFlight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				id, err := e.Start(ctx, prog, runtime.StartOptions{})
				if err != nil {
					errorsSeen.Add(1)
					continue
				}
				started.Add(1)
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
				switch r := rand.IntN(100); {
				case r < 5:
					time.Sleep(time.Duration(rand.IntN(30)) * time.Millisecond)
					if _, err := e.Cancel(ctx, id); err == nil {
						cancels.Add(1)
					}
				case r < 15:
					if _, err := e.Get(ctx, id); err == nil {
						reads.Add(1)
					}
					if _, err := e.History(ctx, id); err == nil {
						reads.Add(1)
					}
				}
				e.Wait(ctx, id)
				if rand.IntN(100) < 5 {
					if _, err := e.Rerun(ctx, id, "b", runtime.RerunOptions{}); err == nil {
						reruns.Add(1)
						e.Wait(ctx, id)
					}
				}
			}
		}()
	}
	wg.Wait()
	loadEnded := time.Now()
	deadline, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, id := range ids {
		rec, err := e.Wait(deadline, id)
		if err != nil || !rec.Status.Terminal() {
			t.Fatalf("run %s not ended 60 s after the load stopped: %v", id, err)
		}
	}
	drained := time.Since(loadEnded)
	snapshot := func() map[string]string {
		m := map[string]string{}
		for _, id := range ids {
			rec, err := e.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(rec)
			m[id] = string(b)
		}
		return m
	}
	first := snapshot()
	time.Sleep(2 * time.Second)
	moved := 0
	for id, rec := range snapshot() {
		if rec != first[id] {
			moved++
			t.Errorf("run %s moved after it ended", id)
		}
	}
	rep, err := runtime.CheckHistories(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems {
		t.Errorf("history: %s", p)
	}
	sec := "load"
	figure(sec, "in flight, duration", "%d runs, %d s", inFlight, seconds)
	figure(sec, "runs started, cancels, reruns, reads", "%d, %d, %d, %d", started.Load(), cancels.Load(), reruns.Load(), reads.Load())
	figure(sec, "starts refused by an error", "%d", errorsSeen.Load())
	figure(sec, "steps per second", "%.0f", float64(started.Load()*4)/float64(seconds))
	figure(sec, "all ended after the load stopped, within", "%s", drained.Round(time.Millisecond))
	figure(sec, "ended runs that moved again", "%d", moved)
	figure(sec, "history gaps and link problems", "%d", len(rep.Problems))
	figure(sec, "peak RSS", "%s", peakRSS())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// peakRSS is this process's VmHWM.
func peakRSS() string {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "?"
}
