package runtime

import (
	"context"
	"testing"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// A child that ends while its parent runs here tells the parent in the
// same commit: no notice is written and no wait key is left; a run reused
// through an idempotency key still tells a second waiter through a notice,
// which is removed when it is delivered.
func TestWaitsLeaveNoKeysBehind(t *testing.T) {
	bs, err := badgerstore.OpenInMemory(badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	e := New(bs, Options{})
	defer e.Close()
	ctx := context.Background()
	ws := lang.NewWorkspaceFiles(map[string][]byte{
		"root.star": []byte("a = sub_workflow(\"mid\", idempotency_key = \"k\")\nsub_workflow(\"mid\", id = \"again\", idempotency_key = \"k\", after = [a])\n"),
		"mid.star":  []byte("sub_workflow(\"leaf\")\n"),
		"leaf.star": []byte("task(\"t\", lambda ctx: {\"ok\": True})\n"),
	}, e.LangOptions())
	prog, err := ws.Load(ctx, "root.star")
	if err != nil || len(prog.Errors) > 0 {
		t.Fatalf("%v %v", err, prog.Errors)
	}
	id, err := e.Start(ctx, prog, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.WaitTree(ctx, id)
	if err != nil || rec.Status != "succeeded" {
		t.Fatalf("%+v %v", rec, err)
	}
	err = bs.View(ctx, func(tx store.Tx) error {
		for _, prefix := range []string{journal.PrefixNotice, journal.PrefixWait, journal.PrefixWaited, journal.PrefixActive} {
			if err := tx.Scan([]byte(prefix), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
				t.Errorf("left behind: %q", k)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Two steps that start together with one idempotency key share a child:
// the second waits for the first's child while it is unfinished, a waiter
// the child's own record does not name. The child's end finds it by the
// mark WaitFor left and tells both steps; no key is left behind.
func TestReusedUnfinishedChildTellsEveryWaiter(t *testing.T) {
	bs, err := badgerstore.OpenInMemory(badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	e := New(bs, Options{})
	defer e.Close()
	ctx := context.Background()
	ws := lang.NewWorkspaceFiles(map[string][]byte{
		"root.star": []byte("sub_workflow(\"leaf\", id = \"a\", idempotency_key = \"k\")\nsub_workflow(\"leaf\", id = \"b\", idempotency_key = \"k\")\n"),
		"leaf.star": []byte("task(\"t\", lambda ctx: {\"ok\": True})\n"),
	}, e.LangOptions())
	prog, err := ws.Load(ctx, "root.star")
	if err != nil || len(prog.Errors) > 0 {
		t.Fatalf("%v %v", err, prog.Errors)
	}
	id, err := e.Start(ctx, prog, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.WaitTree(ctx, id)
	if err != nil || rec.Status != "succeeded" {
		t.Fatalf("%+v %v", rec, err)
	}
	a, b := deref(rec.Steps[0].ChildRunID), deref(rec.Steps[1].ChildRunID)
	if a == "" || a != b {
		t.Fatalf("children %q and %q, want one shared child", a, b)
	}
	err = bs.View(ctx, func(tx store.Tx) error {
		for _, prefix := range []string{journal.PrefixNotice, journal.PrefixWait, journal.PrefixWaited, journal.PrefixActive} {
			if err := tx.Scan([]byte(prefix), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
				t.Errorf("left behind: %q", k)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
