package runtime

// This file: rerun --failed of a for_each step (SPEC §7 Control). The
// step's new attempt keeps the children of its earlier attempts that
// succeeded, their outputs in their places, and starts new children only
// for the indexes that failed, were cancelled or never started. Which
// steps keep their children is stored with the step's record
// (keep_succeeded), so a crash during the rerun keeps them too.

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// loadDynamic restores what a stored run's records say of its dynamic
// steps: the plans of its planners, the for_each steps that keep
// succeeded children.
func (ar *activeRun) loadDynamic(rec *RunRecord, plans map[int]json.RawMessage) {
	if plans != nil {
		ar.dynamic().plans = plans
	}
	for i, s := range rec.Steps {
		if s.KeepSucceeded {
			ar.dynamic().keep[i] = true
		}
	}
}

// keeps reports whether step i's attempts reuse succeeded children.
func (ar *activeRun) keeps(i int) bool { return ar.dyn != nil && ar.dyn.keep[i] }

// setKeeps marks, among the steps a rerun resets, the for_each steps that
// keep their succeeded children (keep), and clears the mark of the others.
func (ar *activeRun) setKeeps(reset []string, keep []string) {
	for _, s := range reset {
		if i := ar.prog.Workflow.StepIndex(s); i >= 0 && ar.keeps(i) {
			delete(ar.dyn.keep, i)
		}
	}
	for _, s := range keep {
		if i := ar.prog.Workflow.StepIndex(s); i >= 0 {
			ar.dynamic().keep[i] = true
		}
	}
}

// keepIterations lists, of the failed steps a rerun --failed resets, the
// for_each steps whose succeeded children are kept: those that have any.
func keepIterations(w *dag.Workflow, state map[string]StepRecord, from []string) []string {
	var out []string
	for _, id := range from {
		if s := w.Step(id); s != nil && s.Kind == dag.KindForEach {
			if st, ok := state[id]; ok && st.Attempt > 0 {
				out = append(out, id)
			}
		}
	}
	return out
}

// planIterations fills, for a dry run, which iterations of each step of
// plan.KeepIterations keep their children (the indexes whose newest child
// succeeded) and which get a new one: the other indexes of the step's
// last output, the item count its attempt saw. A step with no output
// (it failed before it started children) lists no new ones: all its
// items get new children, however many they are then. The run's
// children are read once for all the steps.
func (e *Engine) planIterations(ctx context.Context, rec *RunRecord, plan *RerunRun) error {
	if len(plan.KeepIterations) == 0 {
		return nil
	}
	keptOf, err := e.succeededIterationsOf(ctx, rec.ID, plan.KeepIterations, func(string, int) string { return "" })
	if err != nil {
		return err
	}
	for _, step := range plan.KeepIterations {
		kept := keptOf[step]
		n := -1
		for _, s := range rec.Steps {
			if s.ID != step {
				continue
			}
			if out, ok := s.Output.(map[string]any); ok {
				if results, ok := out["results"].([]any); ok {
					n = len(results)
				}
			}
		}
		keptIdx := make([]int, 0, len(kept))
		for i := range kept {
			if n < 0 || i < n {
				keptIdx = append(keptIdx, i)
			}
		}
		sort.Ints(keptIdx)
		newIdx := []int{}
		for i := 0; i < n; i++ {
			if _, ok := kept[i]; !ok {
				newIdx = append(newIdx, i)
			}
		}
		if plan.KeptIterations == nil {
			plan.KeptIterations, plan.NewIterations = map[string][]int{}, map[string][]int{}
		}
		plan.KeptIterations[step] = keptIdx
		if n >= 0 {
			plan.NewIterations[step] = newIdx
		}
	}
	return nil
}

// succeededIterations finds, for each index of a for_each step, its
// newest child among those of earlier attempts (not current(i)), and
// returns those that succeeded.
func (e *Engine) succeededIterations(ctx context.Context, parentID, step string, current func(i int) string) (map[int]*RunRecord, error) {
	kept, err := e.succeededIterationsOf(ctx, parentID, []string{step}, func(_ string, i int) string { return current(i) })
	return kept[step], err
}

// succeededIterationsOf is succeededIterations for several steps of one
// run, in one read of its children: a map per step, of the indexes whose
// newest child (not current(step, i)) succeeded.
func (e *Engine) succeededIterationsOf(ctx context.Context, parentID string, steps []string, current func(step string, i int) string) (map[string]map[int]*RunRecord, error) {
	newest := map[string]map[int]*RunRecord{}
	for _, s := range steps {
		newest[s] = map[int]*RunRecord{}
	}
	err := e.j.View(ctx, func(tx *journal.Tx) error {
		return tx.ChildRuns(parentID, func(c *RunRecord) error {
			s, i, ok := dag.ParseDynamicChildID(deref(c.ParentStepID))
			if of, wanted := newest[s]; ok && wanted && c.ID != current(s, i) {
				// ids sort by creation: the last seen of an index is its newest
				of[i] = c
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for _, of := range newest {
		for i, c := range of {
			if c.Status != core.RunSucceeded {
				delete(of, i)
			}
		}
	}
	return newest, nil
}
