package lang

import (
	"context"
	"runtime/metrics"
	"sync/atomic"
	"time"

	"go.starlark.net/starlark"
)

// DefaultMaxMemory bounds how much the heap may grow while one workflow is
// declared. Starlark's step limit bounds time, not memory: a few steps can
// build a huge string or list.
const DefaultMaxMemory = 512 << 20

// memoryWatch cancels the thread when the heap grows past limit bytes
// over what it was when the watch began. The heap is shared with the rest
// of the process, so this is a guard against runaway scripts, not an
// accounting of their allocations; one Starlark operation (at most 1 GiB)
// can still complete before the watch sees it.
type memoryWatch struct {
	exceeded atomic.Bool
	stop     context.CancelFunc
}

func watchMemory(thread *starlark.Thread, limit uint64) *memoryWatch {
	ctx, stop := context.WithCancel(context.Background())
	w := &memoryWatch{stop: stop}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	base := read()
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if now := read(); now > base && now-base > limit {
					w.exceeded.Store(true)
					thread.Cancel("memory")
					return
				}
			}
		}
	}()
	return w
}
