package flowscript_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// fanoutSource is a parent whose n sub_workflow steps become ready at
// once: at its start, or (afterTask) when a first task ends.
func fanoutSource(n int, afterTask bool) string {
	after := ""
	src := ""
	if afterTask {
		src = "task(\"first\", lambda ctx: None)\n"
		after = ", after = [\"first\"]"
	}
	return src + fmt.Sprintf("for i in range(%d):\n    sub_workflow(\"leaf\", id = \"c%%d\" %% i, inputs = {\"n\": i}%s)\n", n, after)
}

// TestDecisionsOfAnySize: one decision that spawns thousands of children
// commits in as many transactions as the store needs (SPEC §8), each child
// created once and run to its end, its output back in its parent's step.
func TestDecisionsOfAnySize(t *testing.T) {
	cases := []struct {
		n         int
		afterTask bool
	}{{1000, false}, {1000, true}, {2000, false}, {10000, false}}
	if testing.Short() {
		cases = cases[:2]
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("children=%d/afterTask=%v", c.n, c.afterTask), func(t *testing.T) {
			ws := writeWorkspace(t, map[string]string{
				"parent.star": fanoutSource(c.n, c.afterTask),
				"leaf.star":   "workflow(name = \"leaf\", params = {\"n\": 0})\ntask(\"double\", lambda ctx: {\"double\": ctx.params[\"n\"] * 2})\n",
			})
			eng := openEngine(t, t.TempDir(), flowscript.Options{Durability: flowscript.Fast})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			prog, err := eng.LoadFile(ctx, filepath.Join(ws, "parent.star"), flowscript.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := eng.Run(ctx, prog, flowscript.RunOptions{})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if rec.Status != "succeeded" {
				t.Fatalf("parent %s: %s", rec.Status, deref(rec.Error))
			}
			seen := map[string]bool{}
			for _, s := range rec.Steps {
				if s.ID == "first" {
					continue
				}
				var i int
				if _, err := fmt.Sscanf(s.ID, "c%d", &i); err != nil {
					t.Fatalf("unexpected step %s", s.ID)
				}
				if s.Status != "succeeded" || s.ChildRunID == nil {
					t.Fatalf("step %s: %s, child %v, error %s", s.ID, s.Status, s.ChildRunID, deref(s.Error))
				}
				if seen[*s.ChildRunID] {
					t.Fatalf("step %s shares child %s with another step", s.ID, *s.ChildRunID)
				}
				seen[*s.ChildRunID] = true
				// a child's output is its steps' outputs by step id
				out, _ := s.Output.(map[string]any)
				double, _ := out["double"].(map[string]any)
				if fmt.Sprint(double["double"]) != fmt.Sprint(2*i) {
					t.Fatalf("step %s: output %v; want double = %d", s.ID, s.Output, 2*i)
				}
			}
			if len(seen) != c.n {
				t.Fatalf("%d children in the parent's steps; want %d", len(seen), c.n)
			}
			runs, err := eng.List(ctx, flowscript.ListFilter{})
			if err != nil {
				t.Fatal(err)
			}
			children := 0
			for _, r := range runs {
				if r.ParentRunID != nil && *r.ParentRunID == rec.ID {
					children++
					if !seen[r.ID] {
						t.Fatalf("child %s is in no step of its parent", r.ID)
					}
					if r.Status != "succeeded" {
						t.Fatalf("child %s: %s", r.ID, r.Status)
					}
				}
			}
			if children != c.n {
				t.Fatalf("%d child runs in the store; want exactly %d", children, c.n)
			}
		})
	}
}

// TestLargeWorkflowStarts: a run of 20,000 steps ready at once runs to
// its end. (Its layout would pass the journal's maxLayoutBytes, so its
// creation writes a pending record a step, cut over several transactions;
// smaller runs write one layout: runtime/journal/layout_test.go.)
func TestLargeWorkflowStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("20,000 steps")
	}
	const n = 20000
	eng := openEngine(t, t.TempDir(), flowscript.Options{Durability: flowscript.Fast})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prog, err := eng.LoadString(ctx, "main.star", fmt.Sprintf("for i in range(%d):\n    task(\"t%%d\" %% i, lambda ctx: None)\n", n))
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: t.TempDir()})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	rec, err := eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != "succeeded" || len(rec.Steps) != n {
		t.Fatalf("run %s with %d steps", rec.Status, len(rec.Steps))
	}
	for _, s := range rec.Steps {
		if s.Status != "succeeded" || s.Attempt != 1 {
			t.Fatalf("step %s: %s/%d", s.ID, s.Status, s.Attempt)
		}
	}
}
