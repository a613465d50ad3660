package flowscript_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/dag"
)

var auditTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{1,9}Z$`)

// walkTimes calls fn with every JSON string under a key ending in "_at" or
// named "time".
func walkTimes(v any, path string, fn func(path, s string)) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && (strings.HasSuffix(k, "_at") || k == "time") {
				fn(path+"."+k, s)
				continue
			}
			walkTimes(e, path+"."+k, fn)
		}
	case []any:
		for i, e := range v {
			walkTimes(e, path+"["+string(rune('0'+i%10))+"]", fn)
		}
	}
}

// Records: times UTC RFC 3339 with nanoseconds; steps in declaration order;
// attempt 0 for never-started steps; kinds; absent values null.
func TestSpecRunRecordShape(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
task("z_last_dep", lambda ctx: None, after = ["m"])
a = shell("a", "exit 1")
task("m", lambda ctx: {"x": 1})
task("skipped", lambda ctx: None, after = [a])
task("h", lambda ctx: None, after = [a.failed])
`, "", flowscript.RunOptions{})
	got, err := eng.Get(context.Background(), rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range got.Steps {
		ids = append(ids, s.ID+"/"+s.Kind)
	}
	if strings.Join(ids, ",") != "z_last_dep/task,a/shell,m/task,skipped/task,h/task" {
		t.Fatalf("steps order %v", ids)
	}
	if s := stepByID(t, got, "skipped"); s.Attempt != 0 || s.StartedAt != nil || s.Output != nil || s.Error != nil || s.ChildRunID != nil {
		t.Fatalf("skipped %+v", s)
	}
	data, _ := json.Marshal(got)
	var doc map[string]any
	json.Unmarshal(data, &doc)
	for _, k := range []string{"id", "workflow", "version", "status", "params", "output", "error", "parent_run_id", "parent_step_id", "root_run_id", "depth", "priority", "idempotency_key", "created_at", "started_at", "ended_at", "steps"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("run record lacks %q", k)
		}
	}
	for _, st := range doc["steps"].([]any) {
		for _, k := range []string{"id", "kind", "status", "attempt", "output", "error", "child_run_id", "started_at", "ended_at", "inputs"} {
			if _, ok := st.(map[string]any)[k]; !ok {
				t.Errorf("step record lacks %q: %v", k, st)
			}
		}
	}
	if doc["parent_run_id"] != nil || doc["idempotency_key"] != nil || doc["error"] != nil {
		t.Errorf("absent values: %v %v %v", doc["parent_run_id"], doc["idempotency_key"], doc["error"])
	}
	n := 0
	walkTimes(doc, "run", func(p, s string) {
		n++
		if !auditTimeRE.MatchString(s) {
			t.Errorf("%s = %q is not UTC RFC 3339 with fractional seconds", p, s)
		}
	})
	if n < 5 {
		t.Fatalf("found only %d times", n)
	}
	hist := auditHistory(t, eng, rec.ID)
	hdata, _ := json.Marshal(hist)
	var hdoc []any
	json.Unmarshal(hdata, &hdoc)
	walkTimes(hdoc, "history", func(p, s string) {
		if !auditTimeRE.MatchString(s) {
			t.Errorf("%s = %q", p, s)
		}
	})
	if !(got.CreatedAt.Location().String() == "UTC" && !got.StartedAt.Before(got.CreatedAt) && !got.EndedAt.Before(*got.StartedAt)) {
		t.Errorf("created %v started %v ended %v", got.CreatedAt, got.StartedAt, got.EndedAt)
	}
	if got.CreatedAt.Location() != got.StartedAt.Location() {
		t.Errorf("locations differ")
	}
	// the in-memory record from Run too
	if rec.CreatedAt.Location().String() != "UTC" {
		t.Errorf("Run record created_at in %v", rec.CreatedAt.Location())
	}
}

// History: contiguous seq from 1, every event has a time, types from the
// list; step_started/step_ended pair per attempt; one run_started, one
// run_ended last.
func TestSpecHistoryShape(t *testing.T) {
	eng := specEngine(t, flowscript.Options{})
	rec := specRun(t, eng, `
a = task("a", lambda ctx: fail("x") if ctx.attempt < 2 else None, retries = 1, retry_delay = "10ms")
b = task("b", lambda ctx: fail("y"), after = [a])
task("c", lambda ctx: None, after = [b])
`, "", flowscript.RunOptions{})
	hist := auditHistory(t, eng, rec.ID)
	known := map[string]bool{"run_started": true, "step_started": true, "step_ended": true, "child_spawned": true, "child_ended": true, "cancel_requested": true, "rerun": true, "run_ended": true}
	var types []string
	for i, h := range hist {
		if h.Seq != uint64(i+1) {
			t.Fatalf("event %d seq %d", i, h.Seq)
		}
		if h.Time.IsZero() {
			t.Errorf("event %d has no time", i)
		}
		if i > 0 && h.Time.Before(hist[i-1].Time) {
			t.Errorf("event %d goes back in time", i)
		}
		if !known[h.Type] {
			t.Logf("extra event type %q (allowed: the list is 'at least')", h.Type)
		}
		types = append(types, h.Type+":"+h.Step)
	}
	if types[0] != "run_started:" || types[len(types)-1] != "run_ended:" {
		t.Fatalf("history %v", types)
	}
	last := hist[len(hist)-1]
	if last.Status != "failed" || !strings.HasPrefix(last.Error, "b: ") {
		t.Fatalf("run_ended %+v", last)
	}
	t.Logf("history %v", types)
}

func auditLoadErr(t *testing.T, src string) dag.ErrorList {
	t.Helper()
	eng := specEngine(t, flowscript.Options{})
	_, err := eng.LoadString(context.Background(), "main.star", src)
	var list dag.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %T %v", err, err)
	}
	return list
}

// Definition-time errors are reported with file:line:col at the offending
// call.
func TestSpecDefinitionErrorsPositioned(t *testing.T) {
	cases := []struct {
		name, src, pos, msg string
	}{
		{"bad id", "task(\"a\", lambda ctx: None)\ntask(\"bad id\", lambda ctx: None)\n", "main.star:2:5", "not valid"},
		{"bad id dot", "task(\"a\", lambda ctx: None)\ntask(\"a.b\", lambda ctx: None)\n", "main.star:2:5", "not valid"},
		{"duplicate", "task(\"a\", lambda ctx: None)\ntask(\"a\", lambda ctx: None)\n", "main.star:2:5", "duplicate"},
		{"unknown after", "task(\"a\", lambda ctx: None)\ntask(\"b\", lambda ctx: None, after = [\"nope\"])\n", "main.star:2:5", "nope"},
		{"unknown after cond", "task(\"a\", lambda ctx: None)\ntask(\"b\", lambda ctx: None, after = [\"nope.failed\"])\n", "main.star:2:5", "nope"},
		{"workflow twice", "workflow(name = \"x\")\nworkflow(name = \"y\")\ntask(\"a\", lambda ctx: None)\n", "main.star:2:9", "more than once"},
		{"no steps", "workflow(name = \"x\")\n", "main.star:", "step"},
		{"no steps no workflow", "x = 1\n", "main.star:", "step"},
		{"undeclared param", "workflow(params = {\"env\": \"a\"})\ntask(\"a\", lambda ctx: None, inputs = {\"e\": param(\"evn\")})\n", "main.star:2:", "did you mean \"env\""},
		{"cycle", "task(\"a\", lambda ctx: None, after = [\"b\"])\ntask(\"b\", lambda ctx: None, after = [\"a\"])\n", "main.star:", "step cycle: a -> b -> a"},
		{"bad duration", "task(\"a\", lambda ctx: None, timeout = \"5 minutes\")\n", "main.star:1:5", "duration"},
		{"bad cond suffix", "task(\"a\", lambda ctx: None)\ntask(\"b\", lambda ctx: None, after = [\"a.skipped\"])\n", "main.star:2:5", "skipped"},
		{"undeclared secret", "task(\"a\", lambda ctx: None, inputs = {\"s\": secret(\"NOPE\")})\n", "main.star:1:", "NOPE"},
		{"body arity", "def f():\n    pass\ntask(\"a\", f)\n", "main.star:3:5", "ctx"},
		{"runtime error", "task(\"a\", lambda ctx: None)\nx = 1 // 0\n", "main.star:2:", "division"},
		{"inputs not dict", "task(\"a\", lambda ctx: None, inputs = [1])\n", "main.star:1:5", "inputs"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			list := auditLoadErr(t, c.src)
			var all []string
			found := false
			for _, e := range list {
				s := e.Error()
				all = append(all, s)
				if strings.HasPrefix(s, c.pos) && strings.Contains(s, c.msg) {
					found = true
				}
			}
			if !found {
				t.Errorf("want an error at %s containing %q, got %q", c.pos, c.msg, all)
			}
			if !regexp.MustCompile(`^main\.star:\d+:\d+: `).MatchString(all[0]) {
				t.Errorf("error without file:line:col: %q", all[0])
			}
		})
	}
}

// History seq stays contiguous across a rerun, in the same engine and in a
// reopened one; the rerun is an event of its own.
func TestSpecHistoryContiguousAcrossRerun(t *testing.T) {
	dbDir := t.TempDir()
	eng, err := flowscript.Open(dbDir, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := `
a = task("a", lambda ctx: {"v": 1})
b = task("b", lambda ctx: {"attempt": ctx.attempt}, after = [a])
task("c", lambda ctx: None, after = [b])
`
	rec := specRun(t, eng, src, "", flowscript.RunOptions{})
	ctx := context.Background()
	if _, err := eng.Rerun(ctx, rec.ID, "b", runtimeRerunOptions()); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Wait(ctx, rec.ID); err != nil {
		t.Fatal(err)
	}
	eng.Close()
	eng2 := openEngine(t, dbDir, flowscript.Options{})
	if _, err := eng2.Rerun(ctx, rec.ID, "a", runtimeRerunOptions()); err != nil {
		t.Fatal(err)
	}
	final, err := eng2.Wait(ctx, rec.ID)
	if err != nil || final.Status != "succeeded" {
		t.Fatalf("%v %v", final, err)
	}
	hist := auditHistory(t, eng2, rec.ID)
	reruns := 0
	for i, h := range hist {
		if h.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d: %+v", i, h.Seq, hist)
		}
		if h.Type == "rerun" {
			reruns++
		}
	}
	if reruns != 2 {
		t.Fatalf("%d rerun events", reruns)
	}
	if a, b := stepByID(t, final, "a"), stepByID(t, final, "b"); a.Attempt != 2 || b.Attempt != 3 {
		t.Fatalf("attempts a=%d b=%d, want 2 and 3", a.Attempt, b.Attempt)
	}
}
