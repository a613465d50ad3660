package runtime

import (
	"context"
	"fmt"
	"sort"
	"sync"
)

// Live logs: the output of an attempt that is running now is kept in
// memory by the engine that runs it, already masked, and can be read
// while the attempt runs; when the attempt ends, its log is written to the
// store with the step's end (as before) and dropped from memory. Nothing
// here writes to the store: live output costs no commit.

// liveLogs are the logs of the attempts this engine runs now.
type liveLogs struct {
	mu sync.Mutex
	m  map[liveKey]*liveLog
}

type liveKey struct {
	run     string
	index   int
	attempt int
}

// liveLog is one running attempt's log: the first max bytes written (the
// writes come from the masker, so it holds no secret), and a count of the
// rest.
type liveLog struct {
	key     liveKey
	step    string
	mu      sync.Mutex
	buf     []byte
	max     int
	dropped int
}

// open registers the log of an attempt that starts now.
func (l *liveLogs) open(run string, index int, step string, attempt int) *liveLog {
	k := liveKey{run, index, attempt}
	log := &liveLog{key: k, step: step, max: maxLogBytes}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[liveKey]*liveLog{}
	}
	l.m[k] = log
	return log
}

// close drops the log of an attempt whose end was committed (or that was
// interrupted): from then on, its log is read from the store.
func (l *liveLogs) close(log *liveLog) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m[log.key] == log {
		delete(l.m, log.key)
	}
}

// of returns the logs of run's running attempts.
func (l *liveLogs) of(run string) []*liveLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*liveLog
	for k, log := range l.m {
		if k.run == run {
			out = append(out, log)
		}
	}
	return out
}

func (b *liveLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room >= len(p) {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	b.dropped += len(p) - max(room, 0)
	return len(p), nil
}

// Bytes is the log as it is stored: what was kept, and a note of what was
// not.
func (b *liveLog) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]byte(nil), b.buf...)
	if b.dropped > 0 {
		out = append(out, fmt.Sprintf("\n[flowscript: %d more bytes of log were not kept]\n", b.dropped)...)
	}
	return out
}

// LiveLogEntry is one step attempt's log as of now; Running is set while
// the attempt still runs (its text grows).
type LiveLogEntry struct {
	LogEntry
	Running bool `json:"running"`
}

// LogsNow returns the logs of a run's step attempts as of now: those that
// ended, from the store, and the output so far of those that this engine
// runs now, in step order and then attempt order; step narrows them to one
// step.
func (e *Engine) LogsNow(ctx context.Context, idOrPrefix, step string) ([]LiveLogEntry, error) {
	rec, err := e.getForStep(ctx, idOrPrefix, step) // dynamic_records.go
	if err != nil {
		return nil, err
	}
	// the running attempts first: one that ends meanwhile is then in the
	// store, rather than in neither
	running := e.live.of(rec.ID)
	texts := make([]string, len(running))
	for i, l := range running {
		texts[i] = string(l.Bytes())
	}
	stored, err := e.Logs(ctx, rec.ID, step)
	if err != nil {
		return nil, err
	}
	index := map[string]int{}
	for i, s := range rec.Steps {
		index[s.ID] = i
	}
	type keyed struct {
		index, attempt int
		entry          LiveLogEntry
	}
	var all []keyed
	seen := map[[2]int]bool{}
	for _, l := range stored {
		i := index[l.Step]
		seen[[2]int{i, l.Attempt}] = true
		all = append(all, keyed{i, l.Attempt, LiveLogEntry{LogEntry: l}})
	}
	for i, l := range running {
		if seen[[2]int{l.key.index, l.key.attempt}] || (step != "" && l.step != step) {
			continue // ended and stored meanwhile
		}
		all = append(all, keyed{l.key.index, l.key.attempt, LiveLogEntry{LogEntry: LogEntry{Step: l.step, Attempt: l.key.attempt, Text: texts[i]}, Running: true}})
	}
	sort.SliceStable(all, func(i, j int) bool {
		if all[i].index != all[j].index {
			return all[i].index < all[j].index
		}
		return all[i].attempt < all[j].attempt
	})
	out := make([]LiveLogEntry, len(all))
	for i, k := range all {
		out[i] = k.entry
	}
	return out, nil
}
