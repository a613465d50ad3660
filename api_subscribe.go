package flowscript

import (
	"context"
	"sync"
	"sync/atomic"
)

// Event is one history event of a run, as it is committed: the same
// events History returns afterwards, with the run they belong to.
type Event struct {
	// Run is the run the event happened in, as of the event, without
	// its steps.
	Run RunRecord
	HistoryEvent
}

// Subscription delivers the events of one run tree.
type Subscription struct {
	c       chan Event
	stop    func()
	mu      sync.Mutex
	queue   []Event
	wake    chan struct{}
	closed  bool
	ended   bool
	tree    map[string]bool   // the subscribed run and its descendants so far
	lastSeq map[string]uint64 // per run, the newest event queued
	merged  bool              // the past has been read: live events are deduplicated
	root    string
}

// Events is the channel of events, in order per run. It is closed after
// the subscribed run's run_ended event, when the subscription's context
// ends, or on Close. A slow reader loses nothing: events queue.
func (s *Subscription) Events() <-chan Event { return s.c }

// Close ends the subscription.
func (s *Subscription) Close() { s.stop() }

// Subscribe follows the run id (or a unique prefix) and every run below
// it, detached children included: first the events already committed
// (each run's History, the root's first, then its descendants'), then
// the live ones as they are committed, each event once. So a host may
// Start a run and then Subscribe to it without missing its beginning.
// Replayed events carry the run's current record, live ones the record
// as of the event. If the run has already ended, the channel is closed
// after the replay.
func (e *Engine) Subscribe(ctx context.Context, id string) (*Subscription, error) {
	rec, err := e.rt.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	s := &Subscription{
		c: make(chan Event), wake: make(chan struct{}, 1),
		tree: map[string]bool{rec.ID: true}, lastSeq: map[string]uint64{}, root: rec.ID,
	}
	ctx, cancel := context.WithCancel(ctx)
	remove := e.hub.subscribe(s.offer)
	var once sync.Once
	s.stop = func() { once.Do(func() { remove(); cancel() }) }
	// the past, read after the live events started to queue: nothing falls
	// between the two
	tree, err := e.Tree(ctx, rec.ID)
	if err != nil {
		s.stop()
		return nil, err
	}
	var past []Event
	err = tree.Walk(func(n *TreeNode, _ int) error {
		evs, err := e.History(ctx, n.Run.ID)
		if err != nil {
			return err
		}
		run := n.Run
		run.Steps = nil
		for _, h := range evs {
			past = append(past, Event{Run: run, HistoryEvent: h})
		}
		return nil
	})
	if err != nil {
		s.stop()
		return nil, err
	}
	s.mu.Lock()
	live := s.queue
	s.queue = nil
	for _, ev := range past {
		s.tree[ev.Run.ID] = true
		s.push(ev)
	}
	for _, ev := range live {
		s.pushLive(ev)
	}
	s.merged = true
	if tree.Run.Status.Terminal() {
		s.ended = true
	}
	s.mu.Unlock()
	go s.deliver(ctx)
	return s, nil
}

// push queues an event unless it was queued already; s.mu is held.
func (s *Subscription) push(ev Event) {
	if last, ok := s.lastSeq[ev.Run.ID]; ok && ev.Seq <= last {
		return
	}
	s.lastSeq[ev.Run.ID] = ev.Seq
	s.queue = append(s.queue, ev)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// offer is called by the hub, from the committing goroutines: it must
// not block.
func (s *Subscription) offer(run *RunRecord, ev HistoryEvent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.closed {
		return
	}
	r := *run
	r.Steps = nil
	e := Event{Run: r, HistoryEvent: ev}
	if !s.merged {
		// the past is being read: sorted out when it is merged
		s.queue = append(s.queue, e)
		return
	}
	s.pushLive(e)
}

// pushLive queues a live event of the tree; s.mu is held.
func (s *Subscription) pushLive(e Event) {
	if !s.tree[e.Run.ID] {
		if e.Run.ParentRunID == nil || !s.tree[*e.Run.ParentRunID] {
			return
		}
		s.tree[e.Run.ID] = true
	}
	s.push(e)
	if e.Run.ID == s.root && e.Type == "run_ended" {
		s.ended = true
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
	n    atomic.Int32 // len(subs), read without mu (idle)
}

// idle reports whether nobody subscribes: publishing would tell no one.
func (h *hub) idle() bool { return h.n.Load() == 0 }

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
	h.n.Store(int32(len(h.subs)))
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, id)
		h.n.Store(int32(len(h.subs)))
	}
}

// Observe calls fn with every history event of every run after it is
// committed, from many goroutines (fn must not block), until the returned
// stop is called. Subscribe follows one run tree on a channel.
func (e *Engine) Observe(fn func(run *RunRecord, ev HistoryEvent)) (stop func()) {
	return e.hub.subscribe(fn)
}
