package dag_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/flowscript/flowscript/dag"
)

// A plan comes back from the store as it was declared: references
// (nested, with paths), numbers as workflow data has them, and a map of
// the data whose keys look like the codec's tags.
func TestPlanRoundTrip(t *testing.T) {
	pos := dag.Pos{File: "main.star", Line: 4, Col: 9}
	ref := &dag.Ref{Kind: dag.RefOutput, Step: "list", Path: []any{"files", int64(2)}, Pos: pos}
	p := &dag.Plan{
		Steps: []*dag.Step{
			{ID: "a", Kind: dag.KindTask, Pos: pos, Body: "deploy",
				After:   []dag.Dep{{Step: "plan", Cond: dag.Succeeded, Implicit: true, Via: "planner", Pos: pos}},
				Inputs:  map[string]any{"x": ref, "n": int64(3), "f": 1.5, "l": []any{"s", ref}, "odd": map[string]any{"\x00ref": "data"}},
				Retries: 2, RetryDelay: time.Second, Timeout: time.Minute, Optional: true, Priority: int64(7)},
			{ID: "b", Kind: dag.KindShell, Pos: pos, Command: "echo hi", Env: map[string]any{"K": &dag.Ref{Kind: dag.RefParam, Name: "env", Pos: pos}}, Dir: "sub"},
			{ID: "c", Kind: dag.KindForEach, Pos: pos, Child: &dag.Child{Name: "load", Version: 2},
				Dynamic: &dag.Dynamic{Items: ref, InputsFn: true, MaxConcurrency: 4, OnFailure: dag.Continue}},
			{ID: "d", Kind: dag.KindSubWorkflow, Pos: pos, Child: &dag.Child{Name: "kid", Detach: true, IdempotencyKey: "k", IdempotencyStrategy: dag.FailExisting}},
		},
		Bodies: map[string]dag.GlobalRef{"a": {File: "main.star", Name: "deploy"}, "c#inputs": {File: "lib.star", Name: "norm"}},
	}
	data, err := dag.EncodePlan(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dag.DecodePlan(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, p) {
		for i := range p.Steps {
			if !reflect.DeepEqual(got.Steps[i], p.Steps[i]) {
				t.Errorf("step %d:\n got %#v\nwant %#v", i, got.Steps[i], p.Steps[i])
			}
		}
		t.Fatalf("plan differs after a round trip\n%s", data)
	}
}
