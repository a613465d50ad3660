package store

import "context"

// Watcher is a Store.Watch running on its own goroutine, as started by
// StartWatch.
type Watcher struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// StartWatch runs s.Watch(ctx, prefix, ..., fn) on a new goroutine and
// returns once the subscription is active, so that the caller can read the
// current state knowing that every later write will reach fn. If Watch
// fails before it becomes active, StartWatch returns its error and no
// Watcher. fn runs on the watcher's goroutine.
//
// The watch ends when ctx is done, when fn returns an error, when the
// Store is closed, or when Stop is called.
func StartWatch(ctx context.Context, s Store, prefix []byte, fn func(events []Event) error) (*Watcher, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(w.done)
		defer cancel()
		w.err = s.Watch(ctx, prefix, WatchOptions{Ready: func() { close(ready) }}, fn)
	}()
	select {
	case <-ready:
		return w, nil
	case <-w.done:
		if w.err == nil {
			// ctx ended before the subscription became active.
			return nil, ctx.Err()
		}
		return nil, w.err
	}
}

// Done is closed when the watch has ended.
func (w *Watcher) Done() <-chan struct{} { return w.done }

// Wait blocks until the watch ends and returns what Store.Watch returned:
// nil after its context ended or Stop, else the error that ended it.
func (w *Watcher) Wait() error {
	<-w.done
	return w.err
}

// Stop ends the watch and waits for fn to return. It returns what Wait
// returns.
func (w *Watcher) Stop() error {
	w.cancel()
	return w.Wait()
}
