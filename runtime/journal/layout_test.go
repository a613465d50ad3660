package journal

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
)

var layoutSteps = []StepRecord{
	{ID: "fetch", Kind: "task", Status: core.StepPending},
	{ID: "a<&>\"b", Kind: "shell", Status: core.StepPending}, // escaped in the layout's JSON
	{ID: "kids", Kind: "sub_workflow", Status: core.StepPending},
	{ID: "plan", Kind: "planner", Status: core.StepPending},
}

// createOld writes a run as the engine did before layouts: a pending
// record for every step, then the run's record.
func createOld(t *testing.T, j *Journal, rec *RunRecord) {
	t.Helper()
	ops, err := Create(rec, layoutSteps, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := make([]Op, 0, len(layoutSteps)+1)
	for i := range layoutSteps {
		v, err := encodeStep(&layoutSteps[i])
		if err != nil {
			t.Fatal(err)
		}
		old = append(old, setOp(stepKey(rec.ID, i), v))
	}
	if err := j.Wait(j.Submit([][]Op{append(old, ops[len(ops)-1])})); err != nil {
		t.Fatal(err)
	}
}

func layoutRun(id string) *RunRecord {
	return &RunRecord{ID: id, Workflow: "w", Status: core.RunPending, CreatedAt: packAt}
}

func readSteps(t *testing.T, j *Journal, id string) []StepRecord {
	t.Helper()
	var got []StepRecord
	if err := j.View(context.Background(), func(tx *Tx) (err error) {
		got, err = tx.Steps(id)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// A new run writes one layout instead of a pending record a step. Read
// back, at its creation, after some steps moved and after a planned step
// was added past the declared ones, its steps are what the same run
// written the old way (a record a step, as older databases hold) reads:
// and Check counts and passes both alike.
func TestLayoutReadsAsPendingRecords(t *testing.T) {
	st := diskStore(t)
	j := New(st)
	defer j.Close()
	ops, err := Create(layoutRun("run-new"), layoutSteps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 {
		t.Fatalf("the creation of %d steps is %d ops; want the layout and the record", len(layoutSteps), len(ops))
	}
	if err := j.Wait(j.Submit([][]Op{ops})); err != nil {
		t.Fatal(err)
	}
	createOld(t, j, layoutRun("run-old"))
	var keys int
	if err := st.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(stepPrefix("run-new"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			keys++
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if keys != 1 {
		t.Fatalf("a new run of %d pending steps has %d step keys; want its layout only", len(layoutSteps), keys)
	}
	same := func(when string) {
		t.Helper()
		got, want := readSteps(t, j, "run-new"), readSteps(t, j, "run-old")
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: steps of the run with a layout\n%+v\nthe same run with pending records\n%+v", when, got, want)
		}
		rep, err := Check(context.Background(), st)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) > 0 || rep.Steps != 2*len(want) {
			t.Fatalf("%s: check found %d steps (want %d), problems %v", when, rep.Steps, 2*len(want), rep.Problems)
		}
	}
	same("created")

	start := time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	moves := []struct {
		index int
		rec   StepRecord
	}{
		{1, StepRecord{ID: layoutSteps[1].ID, Kind: "shell", Status: core.StepRunning, Attempt: 1, StartedAt: &start}},
		{3, StepRecord{ID: "plan", Kind: "planner", Status: core.StepSucceeded, Attempt: 1, StartedAt: &start, EndedAt: &start}},
		{4, StepRecord{ID: "planned", Kind: "task", Status: core.StepPending}}, // a step its plan added
	}
	for _, run := range []string{"run-new", "run-old"} {
		var ops []Op
		for _, m := range moves {
			o, err := PutStep(run, m.index, &m.rec)
			if err != nil {
				t.Fatal(err)
			}
			ops = append(ops, o)
		}
		if err := j.Wait(j.Submit([][]Op{ops})); err != nil {
			t.Fatal(err)
		}
	}
	same("moved")
	if got := readSteps(t, j, "run-new"); got[0].Status != core.StepPending || got[1].Status != core.StepRunning || got[4].ID != "planned" {
		t.Fatalf("steps after the moves: %+v", got)
	}

	// a run moved onto a layout of fewer steps (rerun --latest) has a
	// record for each, and nothing of its old layout
	prev := layoutRun("run-new")
	prev.Steps = readSteps(t, j, "run-new")
	next := layoutRun("run-new")
	next.Steps = []StepRecord{{ID: "only", Kind: "task", Status: core.StepPending}}
	if err := j.Update(context.Background(), func(tx *Tx) error { return tx.Relayout(prev, next, func(string) int { return -1 }) }); err != nil {
		t.Fatal(err)
	}
	if got := readSteps(t, j, "run-new"); !reflect.DeepEqual(got, next.Steps) {
		t.Fatalf("steps after the relayout: %+v", got)
	}
}

// Check tells a layout that does not decode, and a planned step missing
// after the listed ones.
func TestCheckLayouts(t *testing.T) {
	st := diskStore(t)
	j := New(st)
	defer j.Close()
	for _, id := range []string{"run-gap", "run-bad"} {
		ops, err := Create(layoutRun(id), layoutSteps, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Wait(j.Submit([][]Op{ops})); err != nil {
			t.Fatal(err)
		}
	}
	planned, err := PutStep("run-gap", len(layoutSteps)+1, &StepRecord{ID: "late", Kind: "task", Status: core.StepPending})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(j.Submit([][]Op{{planned, setOp(stepPrefix("run-bad"), []byte{layoutMagic, 0, 0, 0, 9, '['})}})); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(rep.Problems, "\n")
	for _, want := range []string{"run run-gap: step 4 is missing", "run run-bad: its step layout does not decode"} {
		if !strings.Contains(got, want) {
			t.Errorf("check's problems do not tell %q:\n%s", want, got)
		}
	}
	if err := j.View(context.Background(), func(tx *Tx) error { _, err := tx.Steps("run-bad"); return err }); err == nil {
		t.Error("the steps of a run whose layout is damaged read without an error")
	}
}

// A run whose layout would pass maxLayoutBytes (which might not fit one
// NATS message) is created with a pending record a step, as before
// layouts, and reads its steps all pending in order.
func TestLargeRunHasNoLayout(t *testing.T) {
	st := diskStore(t)
	j := New(st)
	defer j.Close()
	n := maxLayoutBytes/len(`["step-00000","task"],`) + 100
	steps := make([]StepRecord, n)
	for i := range steps {
		steps[i] = StepRecord{ID: fmt.Sprintf("step-%05d", i), Kind: "task", Status: core.StepPending}
	}
	if layoutSize(steps) <= maxLayoutBytes {
		t.Fatalf("%d steps take %d bytes of layout; the test wants more than %d", n, layoutSize(steps), maxLayoutBytes)
	}
	ops, err := Create(layoutRun("big"), steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != n+1 {
		t.Fatalf("the creation of %d steps is %d ops; want a record a step and the run's record", n, len(ops))
	}
	if err := j.Wait(j.Submit([][]Op{ops})); err != nil {
		t.Fatal(err)
	}
	var layouts, keys int
	if err := st.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan(stepPrefix("big"), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			keys++
			if isLayoutKey(k) {
				layouts++
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if layouts != 0 || keys != n {
		t.Fatalf("%d step keys (%d layouts); want %d records and no layout", keys, layouts, n)
	}
	if got := readSteps(t, j, "big"); !reflect.DeepEqual(got, steps) {
		t.Fatalf("read back %d steps, not the %d created", len(got), n)
	}
}

// Step 47's key ends in '/' (its 4-byte index is 0x0000002f), as a
// layout's key does: Check counts it as the step it is, not as a damaged
// layout of another run.
func TestCheckTellsStep47FromALayout(t *testing.T) {
	st := diskStore(t)
	j := New(st)
	defer j.Close()
	steps := make([]StepRecord, 60)
	for i := range steps {
		steps[i] = StepRecord{ID: fmt.Sprintf("s%d", i), Kind: "task", Status: core.StepPending}
	}
	ops, err := Create(layoutRun("run-60"), steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 3, 11, 0, 0, 0, time.UTC)
	moved, err := PutStep("run-60", 47, &StepRecord{ID: "s47", Kind: "task", Status: core.StepRunning, Attempt: 1, StartedAt: &start})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Wait(j.Submit([][]Op{append(ops, moved)})); err != nil {
		t.Fatal(err)
	}
	rep, err := Check(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.Steps != len(steps) {
		t.Fatalf("check found %d steps (want %d), problems %v", rep.Steps, len(steps), rep.Problems)
	}
	if got := readSteps(t, j, "run-60"); len(got) != 60 || got[47].Status != core.StepRunning || got[46].Status != core.StepPending {
		t.Fatalf("read back %d steps: %+v", len(got), got)
	}
}
