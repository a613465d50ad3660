package builtins

import (
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"
)

// DefaultBodyMaxMemory bounds how much the heap may grow while one step
// body attempt runs, when neither the engine nor FLOWSCRIPT_MAX_STEP_MEMORY
// says otherwise.
const DefaultBodyMaxMemory = 512 << 20

// MaxStepMemoryEnv names the environment variable that sets the default
// per-attempt memory limit of step bodies, in bytes or with a KiB, MiB or
// GiB suffix ("2GiB"). It is read once.
const MaxStepMemoryEnv = "FLOWSCRIPT_MAX_STEP_MEMORY"

var envMaxMemory = sync.OnceValue(func() uint64 {
	n, ok := ParseByteSize(os.Getenv(MaxStepMemoryEnv))
	if !ok || n == 0 {
		return DefaultBodyMaxMemory
	}
	return n
})

// BodyMaxMemory is the per-attempt memory limit used when an engine sets
// none: $FLOWSCRIPT_MAX_STEP_MEMORY, else DefaultBodyMaxMemory.
func BodyMaxMemory() uint64 { return envMaxMemory() }

// ParseByteSize reads "1073741824", "512MiB", "2GiB" or "64KiB".
func ParseByteSize(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > (1<<63)/mult {
		return 0, false
	}
	return n * mult, true
}

// MemoryWatch cancels a Starlark thread when the process heap grows past a
// limit over what it was when the watch began. The heap is shared with the
// rest of the process, so this is a guard against runaway scripts, not an
// accounting of their allocations (garbage not yet collected counts too):
// one Starlark operation can still
// complete before the watch sees it (a builtin running in Go is not
// interruptible), which is why collections are also checked before they
// are built (see SafeUniverse).
type MemoryWatch struct {
	thread   *starlark.Thread
	base     uint64
	limit    uint64
	exceeded atomic.Bool
}

// Exceeded reports whether the watch cancelled its thread.
func (w *MemoryWatch) Exceeded() bool { return w.exceeded.Load() }

// Limit is the watch's limit in bytes.
func (w *MemoryWatch) Limit() uint64 { return w.limit }

// Stop ends the watch.
func (w *MemoryWatch) Stop() {
	sampler.mu.Lock()
	delete(sampler.watches, w)
	sampler.mu.Unlock()
}

// MemoryCancelReason is the reason a MemoryWatch gives thread.Cancel.
const MemoryCancelReason = "memory"

// WatchMemory starts a watch on thread; Stop it when the thread is done.
// One sampler goroutine serves every watch of the process.
func WatchMemory(thread *starlark.Thread, limit uint64) *MemoryWatch {
	w := &MemoryWatch{}
	w.start(thread, limit)
	return w
}

// start is WatchMemory on a watch the caller allocated.
func (w *MemoryWatch) start(thread *starlark.Thread, limit uint64) {
	w.thread, w.limit = thread, limit
	sampler.mu.Lock()
	w.base = sampler.heapBytes()
	if sampler.watches == nil {
		sampler.watches = map[*MemoryWatch]struct{}{}
	}
	sampler.watches[w] = struct{}{}
	if !sampler.running {
		sampler.running = true
		go sample()
	}
	sampler.mu.Unlock()
}

var sampler samplerState

type samplerState struct {
	mu      sync.Mutex
	watches map[*MemoryWatch]struct{}
	running bool
	heap    [1]metrics.Sample // heapBytes reads into it
}

// sampleEvery is how often the heap is read while any watch is on.
const sampleEvery = 10 * time.Millisecond

func sample() {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	for range tick.C {
		sampler.mu.Lock()
		if len(sampler.watches) == 0 {
			sampler.running = false
			sampler.mu.Unlock()
			return
		}
		now := sampler.heapBytes()
		var over []*MemoryWatch
		for w := range sampler.watches {
			if now > w.base && now-w.base > w.limit {
				over = append(over, w)
			}
		}
		sampler.mu.Unlock()
		for _, w := range over {
			w.exceeded.Store(true)
			w.thread.Cancel(MemoryCancelReason)
			w.Stop()
		}
	}
}

// heapBytes reads the live heap; sampler.mu must be held.
func (s *samplerState) heapBytes() uint64 {
	m := s.heap[:]
	m[0].Name = "/memory/classes/heap/objects:bytes"
	metrics.Read(m)
	if m[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return m[0].Value.Uint64()
}
