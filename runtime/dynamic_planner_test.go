package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store/badgerstore"
)

const plannerSrc = `
def work(ctx):
    return {"by": ctx.step_id}

def plan(ctx):
    task("a", work)
    task("b", work, after = ["a"])

planner("p", plan)
`

// A crash can cut the commit of a plan after the records of its steps
// and before its planner's record (the committer splits a decision too
// large for one transaction between ops). Loading such a run ignores the
// step records no stored plan declares, and the planner's next plan
// removes them: here a stale record past the planned steps, then a rerun
// from the planner.
func TestPlanRecordsPastThePlanAreIgnored(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	bs, err := badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := New(bs, Options{})
	id, err := e.Start(ctx, loadProg(t, e, plannerSrc), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithTimeout(ctx, 20*time.Second)
	defer stop()
	rec, err := e.Wait(wctx, id)
	if err != nil || rec.Status != core.RunSucceeded || len(rec.Steps) != 3 {
		t.Fatalf("first run: %+v %v", rec, err)
	}
	// a stale record at index 3, as a cut commit of a longer plan leaves
	stale, err := journal.ReplaceStep(id, 3, &StepRecord{ID: "ghost", Kind: "task", Status: core.StepPending})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.j.Wait(e.j.Submit([][]journal.Op{{stale}})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rerun(ctx, id, "p", RerunOptions{}); err != nil {
		t.Fatalf("rerun from the planner: %v", err)
	}
	rec, err = e.Wait(wctx, id)
	if err != nil || rec.Status != core.RunSucceeded {
		t.Fatalf("rerun: %+v %v", rec, err)
	}
	var ids []string
	for _, s := range rec.Steps {
		ids = append(ids, s.ID)
	}
	if len(ids) != 3 || ids[0] != "p" || ids[1] != "a" || ids[2] != "b" {
		t.Fatalf("steps after the re-plan %v, want p a b (the stale record removed)", ids)
	}
	e.Close()
	bs.Close()
}
