package runtime

import (
	"context"
	"fmt"
	"sort"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// appendIterations appends to a run's steps one record per child of its
// for_each and loop steps (SPEC §7 Records: dynamic steps are appended to
// steps as they appear), `load[0]`, `load[1]`…, each with its child run's
// status, output and error. They are read from the children themselves,
// which are the durable state of a fan-out; of the children of several
// attempts (a retried step) the newest of each index is shown.
func appendIterations(tx *journal.Tx, rec *RunRecord) error {
	kinds := map[string]string{}
	for _, s := range rec.Steps {
		if dag.Kind(s.Kind).SpawnsMany() {
			kinds[s.ID] = s.Kind
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	type iteration struct {
		step string
		i    int
		rec  StepRecord
	}
	latest := map[string]*iteration{}
	kids, err := tx.Children(rec.ID)
	if err != nil {
		return err
	}
	dynamic := func(parentStep string) bool {
		step, _, ok := dag.ParseDynamicChildID(parentStep)
		_, dyn := kinds[step]
		return ok && dyn
	}
	for _, id := range kids {
		// only the fields shown are decoded, of the children shown
		c, ok, err := readChild(tx, id, dynamic) // dynamic_iterations.go
		if err != nil {
			return fmt.Errorf("child run %s: %w", id, err)
		}
		if !ok {
			continue
		}
		step, i, _ := dag.ParseDynamicChildID(*c.ParentStepID)
		childID := c.ID
		it := &iteration{step: step, i: i, rec: StepRecord{
			ID: dag.DynamicChildID(step, i), Kind: kinds[step], Status: core.StepStatus(c.Status), Attempt: 1,
			Inputs: c.Params, Output: c.Output, Error: c.Error, ChildRunID: &childID,
			StartedAt: c.StartedAt, EndedAt: c.EndedAt, ChildWorkflow: c.Workflow, ChildVersion: c.Version,
		}}
		// ids of one attempt sort by index, and later attempts after
		// earlier ones: the last seen is the newest
		latest[it.rec.ID] = it
	}
	its := make([]*iteration, 0, len(latest))
	for _, it := range latest {
		its = append(its, it)
	}
	order := map[string]int{}
	for n, s := range rec.Steps {
		order[s.ID] = n
	}
	sort.Slice(its, func(a, b int) bool {
		if its[a].step != its[b].step {
			return order[its[a].step] < order[its[b].step]
		}
		return its[a].i < its[b].i
	})
	for _, it := range its {
		rec.Steps = append(rec.Steps, it.rec)
	}
	return nil
}

// GetDeclared returns a run with its declared steps (planned ones
// included) but not the iterations of its for_each and loop steps, which
// Get reads from the run's children: for a caller that needs only the
// run's status or its declared steps, a read whose cost does not grow
// with the run's fan-out.
func (e *Engine) GetDeclared(ctx context.Context, idOrPrefix string) (*RunRecord, error) {
	return e.stored(ctx, idOrPrefix)
}

// getForStep is the run as a read narrowed to step needs it (logs): its
// declared steps, which are all that have logs, unless step names none of
// them (it may name an iteration, which Get shows): then every step, as
// Get shows them.
func (e *Engine) getForStep(ctx context.Context, idOrPrefix, step string) (*RunRecord, error) {
	rec, err := e.stored(ctx, idOrPrefix)
	if err != nil || step == "" {
		return rec, err
	}
	for _, s := range rec.Steps {
		if s.ID == step {
			return rec, nil
		}
	}
	return e.Get(ctx, rec.ID)
}
