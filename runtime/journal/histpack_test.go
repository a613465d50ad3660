package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

func diskStore(t *testing.T) store.Store {
	t.Helper()
	s, err := badgerstore.Open(t.TempDir(), badgerstore.Options{Durability: badgerstore.Fast})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var packAt = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func packEvent(seq uint64) HistoryEvent {
	return HistoryEvent{Seq: seq, Type: core.RecStepStarted, Time: packAt.Add(time.Duration(seq) * time.Millisecond), Step: fmt.Sprintf("s%d", seq), Attempt: 1}
}

func historyOps(t *testing.T, run string, from, to uint64) []Op {
	t.Helper()
	var ops []Op
	for seq := from; seq <= to; seq++ {
		h := packEvent(seq)
		o, err := AppendHistory(run, &h)
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, o)
	}
	return ops
}

func startedRun(t *testing.T, id string) Op {
	t.Helper()
	o, err := PutRun(&RunRecord{ID: id, Workflow: "w", Status: core.RunRunning, CreatedAt: packAt, StartedAt: &packAt})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// historyKeys lists the seqs of a run's history keys and their values.
func historyKeys(t *testing.T, st store.Store, run string) (seqs []uint64, vals [][]byte) {
	t.Helper()
	err := st.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(histPrefix(run), store.ScanOptions{}, func(k, v []byte) error {
			_, seq, ok := splitHistKey(k)
			if !ok {
				t.Fatalf("key %q", k)
			}
			seqs, vals = append(seqs, seq), append(vals, bytes.Clone(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs, vals
}

func wantHistory(t *testing.T, j *Journal, run string, from, to uint64) {
	t.Helper()
	var got []HistoryEvent
	var last uint64
	err := j.View(context.Background(), func(tx *Tx) error {
		var err error
		if got, err = tx.History(run); err != nil {
			return err
		}
		last, err = tx.LastSeq(run)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []HistoryEvent
	for seq := from; seq <= to; seq++ {
		want = append(want, packEvent(seq))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history of %s:\n%+v\nwant\n%+v", run, got, want)
	}
	if last != to {
		t.Fatalf("LastSeq of %s = %d, want %d", run, last, to)
	}
}

// The history events one transaction writes for a run share keys, each
// holding up to maxPackBytes, while the events of two runs interleave;
// reading gives every event in order, and Check finds nothing wrong.
func TestHistoryPacksInOneTransaction(t *testing.T) {
	st := diskStore(t)
	j := New(st)
	defer j.Close()
	a1 := append([]Op{startedRun(t, "run-a"), startedRun(t, "run-b")}, historyOps(t, "run-a", 1, 80)...)
	b := historyOps(t, "run-b", 1, 3)
	a2 := historyOps(t, "run-a", 81, 120)
	if err := j.Wait(j.Submit([][]Op{a1, b, a2})); err != nil {
		t.Fatal(err)
	}
	if txs, _ := j.Stats(); txs != 1 {
		t.Fatalf("%d transactions, want 1", txs)
	}
	wantHistory(t, j, "run-a", 1, 120)
	wantHistory(t, j, "run-b", 1, 3)
	seqs, vals := historyKeys(t, st, "run-a")
	if len(seqs) < 2 || len(seqs) > 40 || seqs[0] != 1 {
		t.Fatalf("run-a's 120 events are under keys %v", seqs)
	}
	for i, v := range vals {
		if v[0] != '[' || len(v) > maxPackBytes {
			t.Fatalf("key %d holds %d bytes: %.40s…", seqs[i], len(v), v)
		}
	}
	if seqs, _ := historyKeys(t, st, "run-b"); !reflect.DeepEqual(seqs, []uint64{1}) {
		t.Fatalf("run-b's 3 events are under keys %v", seqs)
	}
	rep, err := Check(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Events != 123 {
		t.Fatalf("check: %+v", rep)
	}
	// a later transaction starts a key of its own
	if err := j.Wait(j.Submit([][]Op{historyOps(t, "run-b", 4, 5)})); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, j, "run-b", 1, 5)
	if seqs, _ := historyKeys(t, st, "run-b"); !reflect.DeepEqual(seqs, []uint64{1, 4}) {
		t.Fatalf("run-b's 5 events are under keys %v", seqs)
	}
}

// A database written before packs holds one event a key: it reads as
// before, and packs written after it follow on.
func TestHistoryOneEventAKeyStillReads(t *testing.T) {
	st := diskStore(t)
	j := New(st)
	defer j.Close()
	err := st.Update(context.Background(), func(tx store.Tx) error {
		for seq := uint64(1); seq <= 3; seq++ {
			h := packEvent(seq)
			v, err := json.Marshal(&h)
			if err != nil {
				return err
			}
			if err := tx.Set(HistKey("run-old", seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantHistory(t, j, "run-old", 1, 3)
	if err := j.Wait(j.Submit([][]Op{append([]Op{startedRun(t, "run-old")}, historyOps(t, "run-old", 4, 6)...)})); err != nil {
		t.Fatal(err)
	}
	wantHistory(t, j, "run-old", 1, 6)
	if seqs, _ := historyKeys(t, st, "run-old"); !reflect.DeepEqual(seqs, []uint64{1, 2, 3, 4}) {
		t.Fatalf("keys %v", seqs)
	}
	rep, err := Check(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Events != 6 {
		t.Fatalf("check: %+v", rep)
	}
}

// A seq that does not follow the pack's last starts a key of its own;
// a pack whose events do not follow on from its key does not decode, and
// Check says so.
func TestHistoryPackOnlyTakesTheNextSeq(t *testing.T) {
	st := diskStore(t)
	j := New(st)
	defer j.Close()
	ops := append([]Op{startedRun(t, "run-c")}, historyOps(t, "run-c", 1, 2)...)
	ops = append(ops, historyOps(t, "run-c", 5, 6)...)
	if err := j.Wait(j.Submit([][]Op{ops})); err != nil {
		t.Fatal(err)
	}
	if seqs, _ := historyKeys(t, st, "run-c"); !reflect.DeepEqual(seqs, []uint64{1, 5}) {
		t.Fatalf("keys %v", seqs)
	}
	if _, err := decodeHistoryValue(2, []byte(`[{"seq":2,"type":"x","time":"2026-12-03T10:00:00Z"},{"seq":4,"type":"x","time":"2026-12-03T10:00:00Z"}]`)); err == nil {
		t.Fatal("a pack with a gap decoded")
	}
	if _, err := decodeHistoryValue(2, []byte(`[]`)); err == nil {
		t.Fatal("an empty pack decoded")
	}
	rep, err := Check(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rep.Problems, "\n"); !strings.Contains(got, "run run-c: its history has a gap: event 3 is missing (found 5 next)") {
		t.Fatalf("check: %s", got)
	}
}

// writesStore counts the writes of each key its transactions make.
type writesStore struct {
	store.Store
	sets map[string]int
}

type writesTx struct {
	store.Tx
	s *writesStore
}

func (s *writesStore) Update(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.Store.Update(ctx, func(tx store.Tx) error {
		s.sets = map[string]int{}
		return fn(&writesTx{tx, s})
	})
}

func (t *writesTx) Set(k, v []byte) error {
	t.s.sets[string(k)]++
	return t.Tx.Set(k, v)
}

// A pack is written to the store once, after the transaction's last op,
// however many events it holds (each was a rewrite of the key, which
// Badger counts towards its bounds on a transaction); a pack that a
// seq out of order ends is written when the next one starts.
func TestHistoryPackIsWrittenOnce(t *testing.T) {
	ws := &writesStore{Store: diskStore(t)}
	j := New(ws)
	defer j.Close()
	ops := append(append([]Op{startedRun(t, "run-a")}, historyOps(t, "run-a", 1, 8)...), historyOps(t, "run-b", 1, 3)...)
	if err := j.Wait(j.Submit([][]Op{ops})); err != nil {
		t.Fatal(err)
	}
	for _, k := range [][]byte{histKey("run-a", 1), histKey("run-b", 1)} {
		if n := ws.sets[string(k)]; n != 1 {
			t.Errorf("%q was written %d times in one transaction; want once", k, n)
		}
	}
	if len(ws.sets) != 3 {
		t.Errorf("the transaction wrote %d keys; want the run and two packs", len(ws.sets))
	}
	wantHistory(t, j, "run-a", 1, 8)
	wantHistory(t, j, "run-b", 1, 3)
}
