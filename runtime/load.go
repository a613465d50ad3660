package runtime

import (
	"context"
	"fmt"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// loadRun builds the in-memory state of a stored run.
func (e *Engine) loadRun(ctx context.Context, rec *RunRecord) (*activeRun, error) {
	def, err := e.runSource(ctx, rec)
	if err != nil {
		return nil, err
	}
	prog, err := e.program(ctx, def)
	if err != nil {
		return nil, err
	}
	prog, plans, err := withPlans(prog, rec) // a planner's steps (dynamic_planner.go)
	if err != nil {
		return nil, err
	}
	w := prog.Workflow
	if len(rec.Steps) > len(w.Steps) {
		// records of planned steps no stored plan declares: a crash cut
		// the commit of their plan short (withPlans)
		cut := *rec
		cut.Steps = rec.Steps[:len(w.Steps)]
		rec = &cut
	}
	// what its spawns need from the store is read now, before deciding
	e.prefetchChildren(ctx, prog)
	if len(w.Steps) != len(rec.Steps) {
		return nil, fmt.Errorf("run %s: its stored steps do not match its definition", rec.ID)
	}
	var lastSeq uint64
	var kids []string
	err = e.j.View(ctx, func(tx *journal.Tx) (err error) {
		if lastSeq, err = tx.LastSeq(rec.ID); err != nil {
			return err
		}
		kids, err = tx.Children(rec.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	// the children count (what max_children checks) is written with the
	// run's record, which a spawn does not write: after a crash, count
	// the children the store lists, each created with its listing
	if len(kids) > rec.Children {
		cnt := *rec
		cnt.Children = len(kids)
		rec = &cnt
	}
	secrets, _ := lookupSecrets(w, e.opts.LookupSecret, false)
	run := &core.Run{
		ID: rec.ID, Status: rec.Status, Params: rec.Params, Output: rec.Output,
		Error: deref(rec.Error), CancelRequested: rec.CancelRequested, TimedOut: rec.TimedOut,
		StartedAt: fromOptTime(rec.StartedAt), EndedAt: fromOptTime(rec.EndedAt), RerunAt: fromOptTime(rec.RerunAt),
	}
	ar := &activeRun{rec: *rec, prog: prog, seq: lastSeq, lookup: e.opts.LookupSecret, loaded: true}
	ar.rec.Steps = nil
	ar.init(secrets)
	ar.loadDynamic(rec, plans) // dynamic_rerun.go
	ar.loadMasks(e.opts.LookupSecret)
	for i, s := range rec.Steps {
		if s.ID != w.Steps[i].ID {
			return nil, fmt.Errorf("run %s: its stored step %d is %q, its definition says %q", rec.ID, i, s.ID, w.Steps[i].ID)
		}
		run.Steps = append(run.Steps, &core.Step{
			ID: s.ID, Status: s.Status, Attempt: s.Attempt, RetriesUsed: s.RetriesUsed, EngineStops: s.EngineStops,
			Output: s.Output, Error: deref(s.Error), ChildRunID: deref(s.ChildRunID),
			RetryAt: fromOptTime(s.RetryAt), StartedAt: fromOptTime(s.StartedAt), EndedAt: fromOptTime(s.EndedAt),
			EndError: deref(s.EndError),
		})
		if s.Inputs != nil {
			ar.inputs[i] = s.Inputs
		}
		ar.epochs[i] = s.Epoch
		if s.ChildWorkflow != "" {
			if ar.children == nil {
				ar.children = map[int]childInfo{}
			}
			ar.children[i] = childInfo{workflow: s.ChildWorkflow, version: s.ChildVersion, hash: s.ChildHash}
		}
	}
	ar.m = core.New(w, run)
	ar.m.MaxEngineStops = e.opts.MaxEngineStops
	e.admitter(ar)
	for i, s := range run.Steps {
		if s.Status == core.StepRunning {
			ar.prepareInputs(w.Steps[i].ID)
		}
	}
	return ar, nil
}
