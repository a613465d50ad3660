package dag_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/dag"
)

// at is a position on a line of main.star.
func at(line int) dag.Pos { return dag.Pos{File: "main.star", Line: line, Col: 1} }

// wf builds a workflow of task steps; each step is written "id" or
// "id<-dep,dep.failed,...", declared on consecutive lines.
func wf(specs ...string) *dag.Workflow {
	w := &dag.Workflow{Name: "w", File: "main.star", Pos: at(1)}
	for i, spec := range specs {
		id, deps, _ := strings.Cut(spec, "<-")
		s := &dag.Step{ID: id, Kind: dag.KindTask, Handler: "h", Pos: at(i + 2)}
		if deps != "" {
			for _, d := range strings.Split(deps, ",") {
				step, cond, ok := strings.Cut(d, ".")
				if !ok {
					cond = string(dag.Succeeded)
				}
				s.After = append(s.After, dag.Dep{Step: step, Cond: dag.Condition(cond), Pos: s.Pos})
			}
		}
		w.AddStep(s)
	}
	return w
}

func output(step string, path ...any) *dag.Ref {
	return &dag.Ref{Kind: dag.RefOutput, Step: step, Path: path, Pos: at(99)}
}

func messages(errs dag.ErrorList) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

func ids(steps []*dag.Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.ID
	}
	return out
}

func TestValidateValid(t *testing.T) {
	w := wf("a", "b<-a", "c<-b.failed", "d<-b.done,a")
	if errs := dag.Validate(w); len(errs) > 0 {
		t.Fatalf("Validate: unexpected errors:\n%s", errs)
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name string
		w    func() *dag.Workflow
		want []string
	}{
		{
			name: "no steps",
			w:    func() *dag.Workflow { return wf() },
			want: []string{`main.star:1:1: workflow "w" declares no steps`},
		},
		{
			name: "duplicate id",
			w:    func() *dag.Workflow { return wf("a", "b", "a") },
			want: []string{`main.star:4:1: duplicate step id "a" (first declared at main.star:2:1)`},
		},
		{
			name: "unknown after with did you mean",
			w:    func() *dag.Workflow { return wf("build", "test<-biuld", "x<-nothing-close") },
			want: []string{
				`main.star:3:1: after: unknown step "biuld" (did you mean "build"?)`,
				`main.star:4:1: after: unknown step "nothing-close"`,
			},
		},
		{
			name: "unknown output reference",
			w: func() *dag.Workflow {
				w := wf("build", "use")
				w.Steps[1].Inputs = map[string]any{"x": []any{output("biuld", "k")}}
				return w
			},
			want: []string{`main.star:99:1: reference to unknown step "biuld" (did you mean "build"?)`},
		},
		{
			name: "child_run_id of a task",
			w: func() *dag.Workflow {
				w := wf("build", "use")
				w.Steps[1].Inputs = map[string]any{"x": &dag.Ref{Kind: dag.RefChildRunID, Step: "build", Pos: at(9)}}
				return w
			},
			want: []string{`main.star:9:1: build.child_run_id: step "build" is a task step; only sub_workflow steps have a child run`},
		},
		{
			name: "undeclared param and secret",
			w: func() *dag.Workflow {
				w := wf("a")
				w.Params = []dag.Param{{Name: "env", Default: "dev"}}
				w.Secrets = []string{"TOKEN"}
				w.Steps[0].Inputs = map[string]any{"p": &dag.Ref{Kind: dag.RefParam, Name: "evn", Pos: at(5)}}
				w.Steps[0].Env = map[string]any{"S": &dag.Ref{Kind: dag.RefSecret, Name: "TOKEM", Pos: at(6)}}
				return w
			},
			want: []string{
				`main.star:5:1: param("evn"): no such param in workflow(params=...) (did you mean "env"?)`,
				`main.star:6:1: secret("TOKEM") is not declared in workflow(secrets=...) (did you mean "TOKEN"?)`,
			},
		},
		{
			name: "secret passed to a child",
			w: func() *dag.Workflow {
				w := wf("a")
				w.Secrets = []string{"TOKEN"}
				s := &dag.Step{ID: "child", Kind: dag.KindSubWorkflow, Pos: at(3), Child: &dag.Child{Name: "c"}}
				s.Inputs = map[string]any{"t": map[string]any{"deep": &dag.Ref{Kind: dag.RefSecret, Name: "TOKEN", Pos: at(7)}}}
				w.AddStep(s)
				return w
			},
			want: []string{`main.star:7:1: sub_workflow "child": inputs pass secret("TOKEN") to a child; a child declares and resolves its own secrets`},
		},
		{
			name: "secret in output",
			w: func() *dag.Workflow {
				w := wf("a")
				w.Secrets = []string{"TOKEN"}
				w.Output = map[string]any{"t": &dag.Ref{Kind: dag.RefSecret, Name: "TOKEN", Pos: at(8)}, "o": output("nope")}
				return w
			},
			want: []string{
				`main.star:8:1: output: secret("TOKEN") would expose a secret; outputs cannot hold secrets`,
				`main.star:99:1: reference to unknown step "nope"`,
			},
		},
		{
			name: "errors come sorted by position",
			w: func() *dag.Workflow {
				return wf("c<-zz", "b<-yy", "a<-xx")
			},
			want: []string{
				`main.star:2:1: after: unknown step "zz"`,
				`main.star:3:1: after: unknown step "yy"`,
				`main.star:4:1: after: unknown step "xx"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := messages(dag.Validate(tt.w()))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateCycles(t *testing.T) {
	tests := []struct {
		name string
		w    *dag.Workflow
		want []string
	}{
		{"self", wf("a<-a.done"), []string{"main.star:2:1: step cycle: a -> a"}},
		{"two", wf("a<-b", "b<-a"), []string{"main.star:2:1: step cycle: a -> b -> a"}},
		{"three", wf("x", "a<-c", "b<-a", "c<-b", "d<-c"), []string{"main.star:3:1: step cycle: a -> b -> c -> a"}},
		{
			// declared in reverse: the report still starts at the first
			// declared step of the cycle and follows run order
			"three reversed", wf("c<-b", "b<-a", "a<-c"),
			[]string{"main.star:2:1: step cycle: c -> a -> b -> c"},
		},
		{
			"two separate cycles", wf("a<-b", "b<-a", "c<-e", "d<-c", "e<-d,a"),
			[]string{"main.star:2:1: step cycle: a -> b -> a", "main.star:4:1: step cycle: c -> d -> e -> c"},
		},
		{
			// one strongly connected group holding several cycles is
			// reported once, with its shortest cycle through its first step
			"overlapping cycles", wf("a<-b,c", "b<-a", "c<-b"),
			[]string{"main.star:2:1: step cycle: a -> b -> a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := messages(dag.Validate(tt.w))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Validate:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidateCycleThroughReference(t *testing.T) {
	w := wf("a", "b<-a")
	w.Steps[0].Inputs = map[string]any{"x": output("b", "k")}
	got := messages(dag.Validate(w))
	want := []string{"main.star:2:1: step cycle: a -> b -> a"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestValidateDeepChain(t *testing.T) {
	// a long chain closed into one cycle must not overflow the stack and is
	// reported once
	const n = 20000
	specs := make([]string, n)
	specs[0] = fmt.Sprintf("s0<-s%d", n-1)
	for i := 1; i < n; i++ {
		specs[i] = fmt.Sprintf("s%d<-s%d", i, i-1)
	}
	errs := dag.Validate(wf(specs...))
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Msg, "step cycle: s0 -> s1 -> ") || !strings.HasSuffix(errs[0].Msg, fmt.Sprintf("s%d -> s0", n-1)) {
		t.Fatalf("want one cycle report through every step, got %d errors, the first %.200s", len(errs), errs)
	}
}

func TestTopoOrder(t *testing.T) {
	tests := []struct {
		w    *dag.Workflow
		want []string
	}{
		{wf("a", "b", "c"), []string{"a", "b", "c"}},
		// among ready steps, the one declared first goes first
		{wf("z<-m,a", "m<-root", "a<-root", "root", "free"), []string{"root", "m", "a", "z", "free"}},
		{wf("late<-early", "early", "other"), []string{"early", "late", "other"}},
		{wf("d<-b,c", "c<-a", "b<-a", "a"), []string{"a", "c", "b", "d"}},
	}
	for _, tt := range tests {
		order, err := dag.TopoOrder(tt.w)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(order); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("TopoOrder = %v, want %v", got, tt.want)
		}
	}
}

func TestTopoOrderImplicitDeps(t *testing.T) {
	w := wf("use", "make")
	w.Steps[0].Inputs = map[string]any{"x": output("make")}
	order, err := dag.TopoOrder(w)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(order), []string{"make", "use"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TopoOrder = %v, want %v", got, want)
	}
}

func TestTopoOrderFails(t *testing.T) {
	if _, err := dag.TopoOrder(wf("a<-b", "b<-a")); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle: got %v", err)
	}
	if _, err := dag.TopoOrder(wf("a<-nope")); err == nil || !strings.Contains(err.Error(), `unknown step "nope"`) {
		t.Errorf("unknown dependency: got %v", err)
	}
}

func TestDeps(t *testing.T) {
	w := wf("a", "b", "c", "d<-b.failed")
	d := w.Step("d")
	d.Inputs = map[string]any{
		"x": []any{1, map[string]any{"deep": output("a", "k", int64(0))}},
		"y": output("b"), // after= already names b: its condition rules
	}
	d.Env = map[string]any{"E": output("a")} // a second reference to a adds nothing
	d.Priority = output("c", "prio")
	got := d.Deps()
	want := []dag.Dep{
		{Step: "b", Cond: dag.Failed, Pos: at(5)},
		{Step: "a", Cond: dag.Succeeded, Implicit: true, Via: "inputs", Pos: at(99)},
		{Step: "c", Cond: dag.Succeeded, Implicit: true, Via: "priority", Pos: at(99)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Deps:\ngot  %+v\nwant %+v", got, want)
	}
	if s := fmt.Sprint(got[0], " ", got[1]); s != "b.failed a" {
		t.Errorf("Dep.String: %q", s)
	}
}

func TestDownstream(t *testing.T) {
	w := wf("a", "b<-a", "c<-b.failed", "d", "e<-d,c")
	w.Step("d").Inputs = map[string]any{"x": output("a")}
	tests := map[string][]string{
		"a": {"a", "b", "c", "d", "e"},
		"b": {"b", "c", "e"},
		"c": {"c", "e"},
		"d": {"d", "e"},
		"e": {"e"},
	}
	for id, want := range tests {
		if got := w.Downstream(id); !reflect.DeepEqual(got, want) {
			t.Errorf("Downstream(%s) = %v, want %v", id, got, want)
		}
	}
}

func TestSinks(t *testing.T) {
	w := wf("a", "b<-a", "c", "d<-c.done")
	w.Step("c").Inputs = map[string]any{"x": output("a")}
	w.AddStep(&dag.Step{ID: "e", Kind: dag.KindTask, Pos: at(7), Inputs: map[string]any{"y": output("b")}})
	if got, want := ids(w.Sinks()), []string{"d", "e"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Sinks = %v, want %v", got, want)
	}
}

func TestHandled(t *testing.T) {
	w := wf("a", "b", "c", "on-a<-a.failed", "after-b<-b.done", "after-c<-c")
	w.AddStep(&dag.Step{ID: "ref-c", Kind: dag.KindTask, Pos: at(9), Inputs: map[string]any{"x": output("c")}})
	for id, want := range map[string]bool{"a": true, "b": true, "c": false, "on-a": false} {
		if got := w.Handled(id); got != want {
			t.Errorf("Handled(%s) = %v, want %v", id, got, want)
		}
	}
}

func TestStepLookup(t *testing.T) {
	w := wf("a", "b")
	if w.Step("b") != w.Steps[1] || w.StepIndex("b") != 1 || w.Step("zz") != nil || w.StepIndex("zz") != -1 {
		t.Fatal("Step/StepIndex lookups are wrong")
	}
	// steps appended directly, not through AddStep, are found too
	w.Steps = append(w.Steps, &dag.Step{ID: "c"})
	if w.StepIndex("c") != 2 {
		t.Errorf("StepIndex(c) = %d after a direct append", w.StepIndex("c"))
	}
	// the first of two steps with one id wins
	w.AddStep(&dag.Step{ID: "a"})
	if w.StepIndex("a") != 0 {
		t.Errorf("StepIndex(a) = %d with a duplicate", w.StepIndex("a"))
	}
}

func TestClosest(t *testing.T) {
	cands := []string{"artifact", "env", "replicas", "build", "test", "tset2"}
	tests := []struct{ name, want string }{
		{"artfact", "artifact"},  // a deletion
		{"artifcat", "artifact"}, // a swap of neighbours is one edit
		{"evn", "env"},
		{"replica", "replicas"},
		{"biuld", "build"},
		{"tset", "test"}, // test and tset2 are both one edit away: the smaller name wins
		{"deploy", ""},   // too far
		{"e", ""},        // two edits are too many for a one-letter name
		{"", ""},
		{"build", "build"},
	}
	for _, tt := range tests {
		if got := dag.Closest(tt.name, cands); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if got := dag.DidYouMean("artfact", cands); got != ` (did you mean "artifact"?)` {
		t.Errorf("DidYouMean = %q", got)
	}
	if got := dag.DidYouMean("zzz", cands); got != "" {
		t.Errorf("DidYouMean far = %q", got)
	}
	if got := dag.Closest("x", nil); got != "" {
		t.Errorf("Closest with no candidates = %q", got)
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{500 * time.Millisecond, "500ms"},
		{time.Second, "1s"},
		{90 * time.Second, "1m30s"},
		{5 * time.Minute, "5m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{100 * time.Minute, "1h40m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{0, "0s"},
	}
	for _, tt := range tests {
		got := dag.FormatDuration(tt.d)
		if got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != tt.d {
			t.Errorf("FormatDuration(%v) = %q does not parse back: %v, %v", tt.d, got, back, err)
		}
	}
}

func TestErrorList(t *testing.T) {
	var l dag.ErrorList
	l.Add(dag.Pos{File: "main.star", Line: 10, Col: 2}, "z")
	l.Add(dag.Pos{File: "lib/a.star", Line: 3, Col: 1}, "in %s", "lib")
	l.Add(dag.Pos{File: "main.star", Line: 2, Col: 9}, "b")
	l.Add(dag.Pos{File: "main.star", Line: 2, Col: 9}, "a")
	l.Add(dag.Pos{File: "main.star", Line: 10, Col: 2}, "z") // a repeat
	l.Add(dag.Pos{File: "main.star", Line: 2, Col: 10}, "c")
	l.Sort()
	want := "lib/a.star:3:1: in lib\nmain.star:2:9: a\nmain.star:2:9: b\nmain.star:2:10: c\nmain.star:10:2: z"
	if got := l.Error(); got != want {
		t.Errorf("sorted list:\n%s\nwant:\n%s", got, want)
	}
	if (dag.ErrorList{}).Err() != nil || l.Err() == nil {
		t.Error("Err: want nil for an empty list only")
	}
	if got := (&dag.Error{Msg: "no position"}).Error(); got != "no position" {
		t.Errorf("Error without a position = %q", got)
	}
	if got := (dag.Pos{File: "f.star"}).String(); got != "f.star" {
		t.Errorf("Pos without a line = %q", got)
	}
	if got := (dag.Pos{}).String(); got != "-" {
		t.Errorf("zero Pos = %q", got)
	}
}

func TestRefAndValues(t *testing.T) {
	r := &dag.Ref{Kind: dag.RefOutput, Step: "b"}
	r1 := r.WithKey("images", dag.Pos{})
	r2 := r1.WithKey(int64(0), dag.Pos{})
	r3 := r1.WithKey("other", dag.Pos{}) // must not share r2's path
	if got := r2.String(); got != `b.output["images"][0]` {
		t.Errorf("Ref.String = %s", got)
	}
	if got := r3.String(); got != `b.output["images"]["other"]` {
		t.Errorf("sibling Ref.String = %s", got)
	}
	if r.String() != "b.output" {
		t.Errorf("WithKey changed its receiver: %s", r)
	}
	for ref, want := range map[*dag.Ref]string{
		{Kind: dag.RefParam, Name: "cfg", Path: []any{"k"}}: `param("cfg")["k"]`,
		{Kind: dag.RefSecret, Name: "TOKEN"}:                `secret("TOKEN")`,
		{Kind: dag.RefChildRunID, Step: "d"}:                `d.child_run_id`,
	} {
		if got := ref.String(); got != want {
			t.Errorf("Ref.String = %s, want %s", got, want)
		}
	}

	v := map[string]any{"b": []any{nil, true, false, int64(2), 1.5, "s", r2}, "a": map[string]any{}}
	if got, want := dag.FormatValue(v), `{"a": {}, "b": [None, True, False, 2, 1.5, "s", b.output["images"][0]]}`; got != want {
		t.Errorf("FormatValue = %s, want %s", got, want)
	}
	data, err := json.Marshal(dag.EncodeValue(v))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(data), `{"a":{},"b":[null,true,false,2,1.5,"s",{"$ref":"b.output[\"images\"][0]"}]}`; got != want {
		t.Errorf("EncodeValue = %s, want %s", got, want)
	}
	var seen []string
	dag.WalkRefs(map[string]any{"z": r, "a": []any{r2, map[string]any{"k": r3}}}, func(r *dag.Ref) { seen = append(seen, r.String()) })
	if want := []string{`b.output["images"][0]`, `b.output["images"]["other"]`, "b.output"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("WalkRefs order = %q, want %q", seen, want)
	}
}

func TestValidStepID(t *testing.T) {
	for id, want := range map[string]bool{"build": true, "lint-vet_2": true, "A": true, "": false, "a b": false, "a.b": false, "load[0]": false, "é": false} {
		if got := dag.ValidStepID(id); got != want {
			t.Errorf("ValidStepID(%q) = %v", id, got)
		}
	}
}

func TestRenderFormats(t *testing.T) {
	w := wf("a", "b<-a.failed")
	w.AddStep(&dag.Step{ID: "c", Kind: dag.KindSubWorkflow, Pos: at(4), Child: &dag.Child{Name: "child"},
		Inputs: map[string]any{"x": output("a")}})
	child := wf("inner")
	child.Name = "child"
	opts := dag.RenderOptions{Expand: func(s *dag.Step, depth int) *dag.Workflow {
		if depth != 2 {
			t.Errorf("Expand got depth %d for a child of the root, want 2", depth)
		}
		return child
	}}
	checks := map[string][]string{
		"text":    {"workflow w\n", "    b: task handler \"h\"\n      after: a.failed\n", "      after: a (via inputs)\n", "      workflow child\n"},
		"dot":     {`digraph "w" {`, `"a" -> "b" [label="failed", color=red];`, `"a" -> "c" [style=dashed];`, `"c/inner" [label="inner\ntask"];`},
		"mermaid": {"flowchart LR\n", "s_a -->|failed| s_b", "s_a -.-> s_c", "subgraph s_c__sub [\"child\"]"},
		"json":    {`"schema": 1`, `"graph": {`, `"implicit": true`},
	}
	for format, wants := range checks {
		var b bytes.Buffer
		if err := dag.RenderFormat(&b, w, format, opts); err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for _, want := range wants {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s output lacks %q:\n%s", format, want, b.String())
			}
		}
	}
	if err := dag.RenderFormat(&bytes.Buffer{}, w, "svg", opts); err == nil || !strings.Contains(err.Error(), "text, dot, mermaid, json") {
		t.Errorf("unknown format: %v", err)
	}
	if err := dag.RenderText(&bytes.Buffer{}, wf("a<-b", "b<-a"), dag.RenderOptions{}); err == nil {
		t.Error("rendering a cyclic workflow: want an error")
	}
}

func TestRenderJSONShape(t *testing.T) {
	w := wf("a", "b<-a.done")
	w.Version = 2
	w.Timeout = time.Hour
	w.Params = []dag.Param{{Name: "env", Default: "dev"}}
	w.Output = map[string]any{"r": output("b", "k")}
	g, err := dag.BuildGraphJSON(w, dag.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g.Schema != dag.JSONSchema || *g.Workflow.Version != 2 || *g.Workflow.Timeout != "1h" || g.Workflow.MaxDepth != dag.DefaultMaxDepth {
		t.Errorf("workflow part: %+v", g.Workflow)
	}
	if want := []dag.EdgeJSON{{From: "a", To: "b", Condition: dag.Done}}; !reflect.DeepEqual(g.Edges, want) {
		t.Errorf("edges = %+v", g.Edges)
	}
	if !reflect.DeepEqual(g.Order, []string{"a", "b"}) {
		t.Errorf("order = %v", g.Order)
	}
	if got := fmt.Sprint(g.Output); got != `map[r:map[$ref:b.output["k"]]]` {
		t.Errorf("output = %s", got)
	}
}
