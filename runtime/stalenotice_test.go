package runtime

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// waiterEndFails fails every transaction that ends the step "waiter"
// (a Set of its step record with status succeeded). The one that carries
// that end alone (no notice written in it: the child's end landed in an
// earlier transaction) waits for proceed first, once.
type waiterEndFails struct {
	store.Store
	seen, proceed chan struct{}
	once          sync.Once
}

type waiterEndTx struct {
	store.Tx
	s        *waiterEndFails
	noticed  bool // this transaction wrote a notice (the child's end)
	failNext bool
}

var errWaiterEnd = errors.New("simulated: the waiting step's end cannot be stored")

func (s *waiterEndFails) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error { return fn(&waiterEndTx{Tx: tx, s: s}) })
}

func (t *waiterEndTx) Set(k, v []byte) error {
	if bytes.HasPrefix(k, []byte(journal.PrefixNotice)) {
		t.noticed = true
	}
	if bytes.HasPrefix(k, []byte(journal.PrefixStep)) && bytes.Contains(v, []byte(`"id":"waiter"`)) && bytes.Contains(v, []byte(`"status":"succeeded"`)) {
		if !t.noticed {
			t.s.once.Do(func() {
				close(t.s.seen)
				<-t.s.proceed
			})
		}
		return errWaiterEnd
	}
	return t.Tx.Set(k, v)
}

// The notice a child's end leaves for its parent's step stays in the
// store until the step's end is stored: when the commit that ends the
// step (after the child's end, in a transaction of its own) fails, the
// notice delivered meanwhile, or after the run stopped, is not dropped
// as stale, and the resume ends the step with it. Before the fix the
// engine saw no change in the run's memory (the step had ended there, or
// the run was stopped) and removed the notice: the resumed parent waited
// for ever for a child that had succeeded (TestStoreFaults 1%, 1 run in
// 100 in about one try of three).
func TestNoticeKeptWhenTheStepsEndIsNotStored(t *testing.T) {
	for _, stopped := range []bool{false, true} {
		name := "while the end is written"
		if stopped {
			name = "after the run stopped"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			bs, err := badgerstore.Open(dir, badgerstore.Options{Durability: badgerstore.Fast})
			if err != nil {
				t.Fatal(err)
			}
			defer bs.Close()
			fs := &waiterEndFails{Store: bs, seen: make(chan struct{}), proceed: make(chan struct{})}
			e := New(fs, Options{})
			ctx := context.Background()
			files := map[string][]byte{
				"root.star": []byte("sub_workflow(\"leaf\", id = \"waiter\")\n"),
				"leaf.star": []byte("task(\"t\", lambda ctx: {\"ok\": True})\n"),
			}
			prog, err := lang.NewWorkspaceFiles(files, e.LangOptions()).Load(ctx, "root.star")
			if err != nil || len(prog.Errors) > 0 {
				t.Fatalf("%v %v", err, prog.Errors)
			}
			id, err := e.Start(ctx, prog, StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			e.mu.Lock()
			ar := e.active[id]
			e.mu.Unlock()
			if ar == nil {
				t.Fatal("the run is not active after its start")
			}
			<-fs.seen // the child's end is stored, the step's end being written
			var d journal.Delivery
			found := false
			if err := e.j.View(ctx, func(tx *journal.Tx) error {
				return tx.Notices(id, func(n journal.Delivery, err error) {
					if err == nil {
						d, found = n, true
					}
				})
			}); err != nil {
				t.Fatal(err)
			}
			if !found {
				t.Fatal("no notice for the waiting step after its child's end was stored")
			}
			// the notice, delivered as the watch delivers it
			deliver := func() {
				ev := core.ChildEnded{Step: "waiter", Attempt: d.Notice.Attempt, ChildRunID: d.Run, Status: d.Notice.Status, Output: d.Notice.Output, Error: d.Notice.Error, At: e.now()}
				e.applyWith(ar, ev, []journal.Op{d.Drop()}, nil)
			}
			var delivered sync.WaitGroup
			if !stopped {
				delivered.Add(1)
				go func() { defer delivered.Done(); deliver() }()
			}
			close(fs.proceed)
			if _, err := e.Wait(ctx, id); err == nil {
				t.Fatal("the run ended although its step's end could not be stored")
			}
			if stopped {
				deliver() // a delivery that found the run before it stopped
			}
			delivered.Wait()
			found = false
			if err := e.j.View(ctx, func(tx *journal.Tx) error {
				return tx.Notices(id, func(journal.Delivery, error) { found = true })
			}); err != nil {
				t.Fatal(err)
			}
			if !found {
				t.Fatal("the notice was dropped while the step's end was not stored: a resume would wait for ever")
			}
			e.Close()

			// once the store works again, the resume ends the step with it
			e = New(bs, Options{})
			defer e.Close()
			if _, err := e.Resume(ctx); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, time.Minute) // a guard against a hang, not a measure
			defer cancel()
			rec, err := e.Wait(wctx, id)
			if err != nil || rec.Status != core.RunSucceeded {
				t.Fatalf("after the resume: %v %+v", err, rec)
			}
		})
	}
}
