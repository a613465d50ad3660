package badgerstore

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"

	"github.com/flowscript/flowscript/store"
)

var (
	// probeKey is deleted (never set) to learn when the hub's
	// subscription is live: a delete leaves nothing a reader could see.
	probeKey = []byte(store.ReservedPrefix + "badgerstore/watch-probe")
	// badgerPrefix begins Badger's internal keys.
	badgerPrefix = []byte("!badger!")
)

// hub is a Badger subscription of a Store, shared by every Watch of one
// prefix. It subscribes to the keys that share the prefix's first byte
// (and the probe key's, see subscription): a subscription to every key
// made Badger copy every value written to it, which cost an engine a
// tenth of its CPU.
type hub struct {
	s      *Store
	prefix []byte

	startOnce sync.Once
	cancel    context.CancelFunc
	live      chan struct{} // closed once the subscription has delivered anything
	liveOnce  sync.Once
	done      chan struct{} // closed when the subscription has ended
	err       error         // why it ended; read after done

	// last is the version of the newest commit published; only the
	// subscription's goroutine (publish) uses it.
	last uint64

	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

func newHub(s *Store, prefix []byte) *hub {
	return &hub{
		s:        s,
		prefix:   prefix,
		live:     make(chan struct{}),
		done:     make(chan struct{}),
		watchers: make(map[*watcher]struct{}),
	}
}

// pending is an event waiting for its watcher, with its commit version.
type pending struct {
	store.Event
	version uint64
}

// watcher is one running Watch.
type watcher struct {
	prefix []byte
	signal chan struct{} // has a token when queue is not empty

	mu    sync.Mutex
	queue []pending
}

// start begins the subscription, once.
func (h *hub) start() {
	h.startOnce.Do(func() {
		// what a snapshot sees now was published before the subscription
		// (publish)
		if ts, err := h.s.readTs(); err == nil {
			h.last = ts
		}
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		go func() {
			defer close(h.done)
			matches := []pb.Match{{Prefix: nil}}
			if len(h.prefix) > 0 {
				matches = subscription(h.prefix)
			}
			err := h.s.db.Subscribe(ctx, h.publish, matches)
			if ctx.Err() == nil {
				h.err = err
			}
		}()
	})
}

// subscription is what a hub of prefix asks Badger for: the keys that
// begin with the prefix's first byte, and those that begin with the probe
// key's; publish keeps what the hub's watchers asked for. Badger matches
// every entry a transaction writes against its subscriptions by walking a
// trie one byte of the key at a time, allocating a map at each level it
// enters: matching the whole of "notice/" cost 16 allocations a notice,
// and Badger's transaction marker (once matched too, see publish) 24 a
// transaction, where one byte costs 2 to 4. Our keys begin with a
// lower-case word (see runtime/journal's key layout), so a first byte
// shared with other prefixes copies a few values more, at most.
func subscription(prefix []byte) []pb.Match {
	return []pb.Match{{Prefix: prefix[:1]}, {Prefix: probeKey[:1]}}
}

// waitLive starts the subscription if needed and returns once it is
// live. Badger registers a subscriber on the subscribing goroutine without
// telling anyone, so the only way to know is to commit something and see
// it arrive: a delete of probeKey, repeated with growing pauses until one
// arrives (in practice the first one does).
func (h *hub) waitLive(ctx context.Context) error {
	h.start()
	pause := time.Millisecond
	for {
		select {
		case <-h.live:
			return nil
		default:
		}
		if err := h.probe(); err != nil {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-h.live:
			t.Stop()
			return nil
		case <-t.C:
			pause = min(2*pause, 100*time.Millisecond)
		case <-h.done:
			t.Stop()
			return h.ended()
		case <-h.s.closed:
			t.Stop()
			return store.ErrClosed
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

func (h *hub) probe() error {
	if err := h.s.enter(); err != nil {
		return err
	}
	defer h.s.leave()
	txn := h.s.db.NewTransaction(true)
	defer txn.Discard()
	if err := txn.Delete(probeKey); err != nil {
		return txError("watch probe", err)
	}
	if err := txn.Commit(); err != nil && !errors.Is(err, badger.ErrConflict) {
		return txError("watch probe", err)
	}
	return nil
}

// ended explains why the subscription is no longer running.
func (h *hub) ended() error {
	select {
	case <-h.s.closed:
		return store.ErrClosed
	default:
	}
	if h.err != nil {
		return fmt.Errorf("badgerstore: watch subscription ended: %w", h.err)
	}
	return errors.New("badgerstore: watch subscription ended")
}

// publish is Badger's subscription callback. It must never block:
// Badger's publisher waits for it while holding up every writer.
//
// Badger publishes more than commits: value-log garbage collection moves
// live values by writing them again, and those writes reach subscribers
// too, carrying their original versions. A commit's version is above
// every version published before it (Badger gives versions and sends
// writes in one order), while a moved value's version is that of the
// commit that first wrote it, which this hub has seen (its keys match),
// or which was visible when the hub began (last starts at that version):
// so an entry whose version is not above the newest one seen is a move,
// and dropped. (Matching Badger's transaction marker, which moved values
// lack, told them apart too, for some 10 allocations a transaction.)
// Each request reaches the callback whole, so a transaction is never
// split between two calls.
func (h *hub) publish(list *badger.KVList) error {
	if len(list.Kv) > 0 {
		h.liveOnce.Do(func() { close(h.live) })
	}
	last := h.last
	for _, kv := range list.Kv {
		h.last = max(h.last, kv.Version)
	}
	h.mu.Lock()
	idle := len(h.watchers) == 0
	h.mu.Unlock()
	if idle {
		// A watcher that registers from now on takes its cut-off after
		// these commits were given their versions, so it would drop them.
		return nil
	}
	var events []pending
	for _, kv := range list.Kv {
		if kv.Version <= last || bytes.HasPrefix(kv.Key, badgerPrefix) {
			continue // a value moved by garbage collection; Badger's own
		}
		if !bytes.HasPrefix(kv.Key, h.prefix) {
			continue // matched by its first byte only (subscription)
		}
		e := pending{Event: store.Event{Key: kv.Key}, version: kv.Version}
		if len(kv.Meta) > 0 && kv.Meta[0]&userMetaLive != 0 {
			e.Value = kv.Value
			if e.Value == nil {
				e.Value = []byte{}
			}
		} else {
			e.Deleted = true
		}
		events = append(events, e)
	}
	events = slices.DeleteFunc(events, func(e pending) bool {
		return bytes.HasPrefix(e.Key, []byte(store.ReservedPrefix))
	})
	if len(events) == 0 {
		return nil
	}
	// Badger keeps the writes of one transaction in a map; sort them by
	// key so that watchers see them in a stable order.
	slices.SortStableFunc(events, func(a, b pending) int {
		if c := cmp.Compare(a.version, b.version); c != 0 {
			return c
		}
		return bytes.Compare(a.Key, b.Key)
	})

	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		added := false
		w.mu.Lock()
		for _, e := range events {
			if !bytes.HasPrefix(e.Key, w.prefix) {
				continue
			}
			// Badger hands the same slices to every subscription, and
			// each hub to every watcher: give each its own.
			e.Key, e.Value = bytes.Clone(e.Key), bytes.Clone(e.Value)
			w.queue = append(w.queue, e)
			added = true
		}
		w.mu.Unlock()
		if added {
			select {
			case w.signal <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

func (h *hub) add(w *watcher) {
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

// stop ends the subscription, if it was started, and waits for it.
func (h *hub) stop() {
	started := false
	h.startOnce.Do(func() {}) // no start after this
	if h.cancel != nil {
		started = true
		h.cancel()
	}
	if started {
		<-h.done
	}
}

// take removes and returns the queued events committed after version
// since.
func (w *watcher) take(since uint64) []store.Event {
	w.mu.Lock()
	q := w.queue
	w.queue = nil
	w.mu.Unlock()
	out := make([]store.Event, 0, len(q))
	for _, e := range q {
		if e.version > since {
			out = append(out, e.Event)
		}
	}
	return out
}

// Watch implements store.Store.
//
// Once the hub is live the watcher is registered, and only then is the
// cut-off taken: the newest commit version that a snapshot can see. The
// hub may already have passed on to nobody only commits whose version is
// at most that cut-off (a commit is published before it becomes
// visible, and the cut-off waits for every commit given a version before
// it), so every commit above the cut-off reaches the watcher, and a View
// started after Ready sees every commit at or below it.
func (s *Store) Watch(ctx context.Context, prefix []byte, opts store.WatchOptions, fn func(events []store.Event) error) error {
	select {
	case <-s.closed:
		return store.ErrClosed
	default:
	}
	if ctx.Err() != nil {
		return nil
	}
	hub := s.hubFor(prefix)
	if err := hub.waitLive(ctx); err != nil {
		if ctx.Err() != nil && !errors.Is(err, store.ErrClosed) {
			return nil
		}
		return err
	}
	w := &watcher{prefix: bytes.Clone(prefix), signal: make(chan struct{}, 1)}
	hub.add(w)
	defer hub.remove(w)
	since, err := s.readTs()
	if err != nil {
		return err
	}
	if opts.Ready != nil {
		opts.Ready()
	}
	for {
		select {
		case <-s.closed:
			return store.ErrClosed
		case <-ctx.Done():
			return nil
		case <-hub.done:
			return hub.ended()
		case <-w.signal:
		}
		if events := w.take(since); len(events) > 0 {
			if err := fn(events); err != nil {
				return err
			}
		}
	}
}

// hubFor is the hub of a prefix, made on first use.
func (s *Store) hubFor(prefix []byte) *hub {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	h := s.hubs[string(prefix)]
	if h == nil {
		h = newHub(s, bytes.Clone(prefix))
		if s.hubsStopped {
			h.startOnce.Do(func() {}) // the store closes: never started
		}
		s.hubs[string(prefix)] = h
	}
	return h
}

// stopHubs ends every subscription, and refuses to start new ones.
func (s *Store) stopHubs() {
	s.hubMu.Lock()
	s.hubsStopped = true
	hubs := make([]*hub, 0, len(s.hubs))
	for _, h := range s.hubs {
		hubs = append(hubs, h)
	}
	s.hubMu.Unlock()
	for _, h := range hubs {
		h.stop()
	}
}

// readTs returns the version of the newest commit a new snapshot sees.
func (s *Store) readTs() (uint64, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	return txn.ReadTs(), nil
}
