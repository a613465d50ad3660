package runtime

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
	"github.com/hashicorp/go-hclog"
	"os"
)

// failingStore fails (after a pause the test controls) any transaction that
// writes a value containing "FAILME" — standing in for store.ErrTooLarge on
// a big output, or a disk error.
type failingStore struct {
	store.Store
	seen    chan struct{}
	proceed chan struct{}
	once    sync.Once
}

type failingTx struct {
	store.Tx
	s *failingStore
}

func (s *failingStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(&failingTx{tx, s}) })
}

func (t *failingTx) Set(k, v []byte) error {
	if bytes.HasPrefix(k, []byte(journal.PrefixStep)) && bytes.Contains(v, []byte("FAILME")) {
		t.s.once.Do(func() { close(t.s.seen) })
		<-t.s.proceed
		return errors.New("simulated: transaction too large")
	}
	return t.Tx.Set(k, v)
}

// A commit of a run fails while a later commit of the same run is already
// queued: the later one is refused too, so the stored history has no gap
// and the stored state never skips the failed transition.
func TestFailedCommitStopsTheRunsLaterCommits(t *testing.T) {
	bs, err := badgerstore.OpenInMemory(badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	fs := &failingStore{Store: bs, seen: make(chan struct{}), proceed: make(chan struct{})}
	e := New(fs, Options{Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, Level: hclog.Error})})
	defer e.Close()
	e.RegisterHandler("big", func(ctx context.Context, tc *TaskContext) (map[string]any, error) {
		return map[string]any{"blob": "FAILME"}, nil
	})
	e.RegisterHandler("small", func(ctx context.Context, tc *TaskContext) (map[string]any, error) {
		<-fs.seen // the big step's end is being committed (and will fail)
		return map[string]any{"ok": true}, nil
	})
	ctx := context.Background()
	ws := lang.NewWorkspaceFiles(map[string][]byte{"root.star": []byte("task(\"big\", \"big\")\ntask(\"small\", \"small\")\n")}, e.LangOptions())
	prog, err := ws.LoadSource(ctx, "root.star", []byte("task(\"big\", \"big\")\ntask(\"small\", \"small\")\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(prog.Errors) > 0 {
		t.Fatal(prog.Errors)
	}
	id, err := e.Start(ctx, prog, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	<-fs.seen
	time.Sleep(200 * time.Millisecond) // small decides and queues its commit
	close(fs.proceed)
	time.Sleep(200 * time.Millisecond)
	hist, err := e.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rec.Steps {
		if rec.Status.Terminal() && !s.Status.Terminal() {
			t.Errorf("stored run is %s but its step %s is still %s", rec.Status, s.ID, s.Status)
		}
	}
	for i, h := range hist {
		t.Logf("seq %d %s %s %s", h.Seq, h.Type, h.Step, h.Status)
		if h.Seq != uint64(i+1) {
			t.Errorf("history seq gap: event %d has seq %d", i+1, h.Seq)
		}
	}
}
