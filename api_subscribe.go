package flowscript

import (
	"context"
	"sync"
)

// Event is one history event of a run, as it is committed: the same
// events History returns afterwards, with the run they belong to.
type Event struct {
	// Run is the run the event happened in, as of the event, without
	// its steps.
	Run RunRecord
	HistoryEvent
}

// Subscription delivers the live events of one run tree.
type Subscription struct {
	c      chan Event
	stop   func()
	mu     sync.Mutex
	queue  []Event
	wake   chan struct{}
	closed bool
	ended  bool
	tree   map[string]bool // the subscribed run and its descendants so far
	root   string
}

// Events is the channel of events, in commit order per run. It is closed
// after the subscribed run's run_ended event, when the subscription's
// context ends, or on Close. A slow reader loses nothing: events queue.
func (s *Subscription) Events() <-chan Event { return s.c }

// Close ends the subscription.
func (s *Subscription) Close() { s.stop() }

// Subscribe follows the run id (or a unique prefix) and every run below
// it, detached children included, from now on: events committed before
// the call are in History. If the run has already ended, the channel is
// closed at once.
func (e *Engine) Subscribe(ctx context.Context, id string) (*Subscription, error) {
	rec, err := e.rt.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	s := &Subscription{
		c: make(chan Event), wake: make(chan struct{}, 1),
		tree: map[string]bool{rec.ID: true}, root: rec.ID,
	}
	ctx, cancel := context.WithCancel(ctx)
	remove := e.hub.subscribe(s.offer)
	var once sync.Once
	s.stop = func() { once.Do(func() { remove(); cancel() }) }
	// the run may have ended between Get and subscribing
	if now, err := e.rt.Get(ctx, rec.ID); err == nil && RunStatus(now.Status).Terminal() {
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
	}
	go s.deliver(ctx)
	return s, nil
}

// offer is called by the hub, from the committing goroutines: it must
// not block.
func (s *Subscription) offer(run *RunRecord, ev HistoryEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.closed {
		return
	}
	if !s.tree[run.ID] {
		if run.ParentRunID == nil || !s.tree[*run.ParentRunID] {
			return
		}
		s.tree[run.ID] = true
	}
	r := *run
	r.Steps = nil
	s.queue = append(s.queue, Event{Run: r, HistoryEvent: ev})
	if run.ID == s.root && ev.Type == "run_ended" {
		s.ended = true
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Subscription) deliver(ctx context.Context) {
	defer func() {
		s.stop()
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.c)
	}()
	for {
		s.mu.Lock()
		batch, ended := s.queue, s.ended
		s.queue = nil
		s.mu.Unlock()
		for _, ev := range batch {
			select {
			case s.c <- ev:
			case <-ctx.Done():
				return
			}
		}
		if ended && len(batch) == 0 {
			return
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}

// hub fans committed history events out to subscribers.
type hub struct {
	mu   sync.Mutex
	subs map[int]func(*RunRecord, HistoryEvent)
	next int
}

func newHub() *hub { return &hub{subs: map[int]func(*RunRecord, HistoryEvent){}} }

func (h *hub) publish(run *RunRecord, ev HistoryEvent) {
	h.mu.Lock()
	subs := make([]func(*RunRecord, HistoryEvent), 0, len(h.subs))
	for _, f := range h.subs {
		subs = append(subs, f)
	}
	h.mu.Unlock()
	for _, f := range subs {
		f(run, ev)
	}
}

func (h *hub) subscribe(fn func(*RunRecord, HistoryEvent)) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	h.subs[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, id)
	}
}

// Observe calls fn with every history event of every run after it is
// committed, from many goroutines (fn must not block), until the returned
// stop is called. Subscribe follows one run tree on a channel.
func (e *Engine) Observe(fn func(run *RunRecord, ev HistoryEvent)) (stop func()) {
	return e.hub.subscribe(fn)
}
