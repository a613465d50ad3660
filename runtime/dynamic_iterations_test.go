package runtime

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

func anyStep(string) bool { return true }

// sameAsWhole checks viewChild against decoding the record whole, as the
// journal does: where the fast path answers, it answers the same; where
// encoding/json refuses the record, the fast path does not answer.
func sameAsWhole(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	v, ok, fast := viewChild(data, anyStep)
	var whole RunRecord
	err := json.Unmarshal(data, &whole)
	if err != nil {
		if fast {
			t.Fatalf("%s: encoding/json refuses it (%v), the fast path read %+v", data, err, v)
		}
		return false
	}
	if fast && (!ok || !reflect.DeepEqual(v, viewOf(&whole))) {
		t.Fatalf("%s:\nfast  %#v\nwhole %#v", data, v, viewOf(&whole))
	}
	return fast
}

func sampleRecords(t testing.TB) [][]byte {
	now := time.Date(2026, 12, 3, 14, 0, 0, 123, time.UTC)
	step, parent, msg := "load[12]", "01parent", "boom: \"quoted\" \\ é \u2028 <tag>"
	recs := []RunRecord{
		{ID: "01child", Workflow: "leaf", Version: 1, Status: core.RunSucceeded, Params: map[string]any{"i": 12},
			Output: map[string]any{"noop": nil}, ParentRunID: &parent, ParentStepID: &step, RootRunID: parent,
			Depth: 2, CreatedAt: now, StartedAt: &now, EndedAt: &now, Lineage: []string{"p", "leaf"}, Hash: "abc", Workspace: "/w"},
		{ID: "01child2", Workflow: "léaf", Version: 7, Status: core.RunFailed, Error: &msg, ParentStepID: &step,
			Params: map[string]any{"s": "a\"b", "f": 1.5, "big": 1e300, "l": []any{1, "x", nil, true, map[string]any{}}},
			Output: []any{"é", -0.0, 12345678901234567890.0}, MaskSecrets: []string{"K"}},
		{ID: "01child3", Status: core.RunPending, CreatedAt: now},
	}
	var out [][]byte
	for i := range recs {
		b, err := recs[i].MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out,
		[]byte(` { "id" : "x" , "status":"running", "params" : { "a" : [ 1 , { "b" : "}" } ] } , "output":"]" } `),
		[]byte(`{"id":"x","params":{"a":1},"params":{"b":2}}`), // encoding/json merges the two
		[]byte(`{"ID":"x","id":"y"}`),
		[]byte(`{"ſtatus":"failed"}`), // encoding/json folds ſ into s
		[]byte(`{"i\u0064":"x"}`),
		[]byte(`{"id":"x","version":1.0}`),
		[]byte(`{"id":"x","version":"1"}`),
		[]byte(`{"id":"x","started_at":"yesterday"}`),
		[]byte(`{"id":"x","error":7}`),
		[]byte(`{"id":"x","hash":}`),
		[]byte(`{"id":"x\ud800"}`),
		[]byte("{\"id\":\"\xff\"}"),
		[]byte(`{"id":"x","unknown_later_field":{"deep":[1,2,{"x":"]"}]},"workflow":"w"}`),
		[]byte(`{}`), []byte(`[]`), []byte(`null`), []byte(``),
		// not JSON: encoding/json refuses them, so must the split
		[]byte(`{"id":"x",}`), []byte("{\"id\":\"a\x01\"}"), []byte(`{"depth":01}`), []byte(`{"hash":[1,]}`),
		[]byte(`{"lineage":tru}`), []byte(`{"hash":"\u12g4"}`), []byte(`{"id":"x"} x`), []byte(`{"depth":-}`),
		[]byte(`{"depth":1.}`), []byte(`{"depth":1e}`), []byte(`{"x":{"y":[}]}`), []byte(`{"x":"\q"}`),
		[]byte(`{"x":[`+strings.Repeat("[", 1100)+strings.Repeat("]", 1100)+`]}`),
	)
}

// The fast view of a child's record is the record decoded whole, for
// the records the engine writes and for the odd ones it does not.
func TestChildViewIsTheWholeRecordsView(t *testing.T) {
	fast := 0
	for _, data := range sampleRecords(t) {
		if sameAsWhole(t, data) {
			fast++
		}
	}
	if fast < 5 {
		t.Fatalf("the fast path answered for %d records only", fast)
	}
}

func FuzzChildView(f *testing.F) {
	for _, data := range sampleRecords(f) {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameAsWhole(t, data) })
}

// The records of a fan-out's children, as the engine writes them, are
// read on the fast path (reading a parent does not decode its children
// whole), and only the children of dynamic steps are decoded.
func TestFanOutChildrenAreReadOnTheFastPath(t *testing.T) {
	e, _, rec := runFiles(t, map[string]string{
		"main.star": "for_each(\"load\", items = [\"a\", \"b\\\"\", \"é\"], workflow = \"leaf\", inputs = lambda s: {\"s\": s})\n" +
			"sub_workflow(\"leaf\", id = \"one\", inputs = {\"s\": \"solo\"})\n",
		"leaf.star": "workflow(params = {\"s\": \"\"})\ntask(\"echo\", lambda ctx: {\"got\": ctx.params[\"s\"]})\n",
	})
	ctx, id := context.Background(), rec.ID
	if rec.Status != core.RunSucceeded {
		t.Fatalf("run: %+v", rec)
	}
	if len(rec.Steps) != 5 || rec.Steps[3].ID != "load[1]" || rec.Steps[3].Inputs.(map[string]any)["s"] != "b\"" {
		t.Fatalf("steps: %+v", rec.Steps)
	}
	shown := 0
	err := e.j.View(ctx, func(tx *journal.Tx) error {
		kids, err := tx.Children(id)
		if err != nil {
			return err
		}
		for _, kid := range kids {
			data, err := tx.RunBytes(kid)
			if err != nil {
				return err
			}
			v, ok, fast := viewChild(data, func(s string) bool { return s != "one" })
			if !fast {
				t.Errorf("child %s is not read on the fast path: %s", kid, data)
			}
			if ok {
				shown++
				sameAsWhole(t, data)
			} else if v.Params != nil || v.ID != "" {
				t.Errorf("child %s of a step not shown was decoded: %+v", kid, v)
			}
		}
		return nil
	})
	if err != nil || shown != 3 {
		t.Fatalf("children shown %d (want 3), %v", shown, err)
	}
}

// BenchmarkChildView: the view of one fan-out child's record, read on the
// fast path (fast) or decoded whole as the journal decodes it (whole).
func BenchmarkChildView(b *testing.B) {
	data := sampleRecords(b)[0]
	b.Run("fast", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, ok, fast := viewChild(data, anyStep); !ok || !fast {
				b.Fatal("not on the fast path")
			}
		}
	})
	b.Run("whole", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var rec RunRecord
			if err := json.Unmarshal(data, &rec); err != nil {
				b.Fatal(err)
			}
			_ = viewOf(&rec)
		}
	})
}

// Reads that show no iterations do not read a parent's children: its
// status (GetDeclared) and its logs, which only declared steps have;
// Get, which shows the iterations, reads them once. A step named that is
// no declared one may be an iteration: that read is Get's.
func TestReadsWithoutIterationsReadNoChildren(t *testing.T) {
	e, st, rec := runFiles(t, map[string]string{
		"main.star": "def hi(ctx):\n    ctx.log(\"hi\")\n    return {}\n" +
			"task(\"hi\", hi)\nfor_each(\"load\", items = [1, 2], workflow = \"leaf\", inputs = lambda i: {\"i\": i})\n",
		"leaf.star": "workflow(params = {\"i\": 0})\ntask(\"t\", lambda ctx: None)\n",
	})
	ctx, id := context.Background(), rec.ID
	if rec.Status != core.RunSucceeded || len(rec.Steps) != 4 {
		t.Fatalf("run: %+v", rec)
	}
	prefix := journal.ChildKey(id, "")
	st.prefix.Store(&prefix)
	scans := func(what string, want int64, read func() error) {
		t.Helper()
		before := st.scans.Load()
		if err := read(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if n := st.scans.Load() - before; n != want {
			t.Errorf("%s read the children %d times, want %d", what, n, want)
		}
	}
	scans("GetDeclared", 0, func() error {
		rec, err := e.GetDeclared(ctx, id)
		if err == nil && (rec.Status != core.RunSucceeded || len(rec.Steps) != 2) {
			t.Errorf("GetDeclared: %+v", rec)
		}
		return err
	})
	for _, step := range []string{"", "hi"} {
		scans("LogsNow "+step, 0, func() error {
			logs, err := e.LogsNow(ctx, id, step)
			if err == nil && (len(logs) != 1 || logs[0].Text != "hi\n") {
				t.Errorf("LogsNow %q: %+v", step, logs)
			}
			return err
		})
		scans("Logs "+step, 0, func() error { _, err := e.Logs(ctx, id, step); return err })
	}
	scans("Logs of an iteration", 1, func() error { _, err := e.Logs(ctx, id, "load[1]"); return err })
	scans("Get", 1, func() error { _, err := e.Get(ctx, id); return err })
}
