package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// CheckHistories finds nothing wrong in the records of finished runs
// (a parent with a child among them), and names each kind of damage: a
// history gap, a record that does not decode, a child whose parent does
// not list it, a waited mark left on an ended run, on no run, or holding
// bytes.
func TestCheckHistories(t *testing.T) {
	bs, err := badgerstore.Open(t.TempDir(), badgerstore.Options{Durability: badgerstore.Fast})
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	e := New(bs, Options{})
	defer e.Close()
	ctx := context.Background()
	e.RegisterHandler("nop", func(ctx context.Context, tc *TaskContext) (map[string]any, error) { return nil, nil })
	src := "workflow(name = \"p\")\ntask(\"a\", \"nop\")\nsub_workflow(\"c\", script = \"workflow(name = \\\"kid\\\")\\ntask(\\\"k\\\", \\\"nop\\\")\\n\")\n"
	var ids []string
	for i := 0; i < 3; i++ {
		id, err := e.Start(ctx, loadProg(t, e, src), StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Wait(ctx, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rep, err := CheckHistories(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Runs != 6 || rep.Children != 3 || rep.Events == 0 {
		t.Fatalf("whole database: %+v", rep)
	}
	rec, err := e.Get(ctx, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	child := *rec.Steps[1].ChildRunID
	// the history of ids[0] is packed (several events under one key): it
	// is written again one event a key, as before packs, without event 2
	h0, err := e.History(ctx, ids[0])
	if err != nil || len(h0) < 3 {
		t.Fatalf("history of %s: %v, %v", ids[0], h0, err)
	}
	err = bs.Update(ctx, func(tx store.Tx) error {
		var keys [][]byte
		err := tx.Scan([]byte("hist/"+ids[0]+"/"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.Delete(k); err != nil {
				return err
			}
		}
		for _, h := range h0 {
			v, err := json.Marshal(&h)
			if err != nil {
				return err
			}
			if h.Seq == 2 {
				continue
			}
			if err := tx.Set(journal.HistKey(ids[0], h.Seq), v); err != nil {
				return err
			}
		}
		if err := tx.Set(journal.StepKey(ids[1], 0), []byte("garbage")); err != nil {
			return err
		}
		if err := tx.Set([]byte(journal.PrefixWaited+ids[0]), nil); err != nil {
			return err
		}
		if err := tx.Set([]byte(journal.PrefixWaited+ids[1]), []byte("odd")); err != nil {
			return err
		}
		if err := tx.Set([]byte(journal.PrefixWaited+"no-such-run"), nil); err != nil {
			return err
		}
		return tx.Delete(journal.ChildKey(ids[2], child))
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = CheckHistories(ctx, bs)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rep.Problems, "\n")
	for _, want := range []string{
		"run " + ids[0] + ": its history has a gap: event 2 is missing",
		"run " + ids[1] + ": step 0 does not decode",
		"run " + child + ": its parent " + ids[2] + " does not list it as a child",
		"run " + ids[0] + ": it ended succeeded but is still marked as waited for",
		"run " + ids[1] + ": its waited mark holds 3 bytes",
		"run no-such-run: it is marked as waited for but has no run record",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not say %q:\n%s", want, got)
		}
	}
}
