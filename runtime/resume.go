package runtime

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
)

// Unfinished lists the ids of runs that have not ended.
func (e *Engine) Unfinished(ctx context.Context) ([]string, error) {
	var ids []string
	err := e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte(prefixActive), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			ids = append(ids, string(k[len(prefixActive):]))
			return nil
		})
	})
	return ids, err
}

// Resume continues every unfinished run that this engine is not already
// running: finished steps are kept, steps that were running start again as
// a new attempt. It returns the ids it continued; Wait on them.
func (e *Engine) Resume(ctx context.Context) ([]string, error) {
	ids, err := e.Unfinished(ctx)
	if err != nil {
		return nil, err
	}
	var resumed []string
	for _, id := range ids {
		e.mu.Lock()
		_, running := e.active[id]
		e.mu.Unlock()
		if running {
			continue
		}
		if err := e.resumeRun(ctx, id); err != nil {
			return resumed, fmt.Errorf("run %s: %w", id, err)
		}
		resumed = append(resumed, id)
	}
	// the ends of runs that happened while their waiters were not running
	if err := e.pendingNotices(ctx); err != nil {
		return resumed, err
	}
	return resumed, nil
}

func (e *Engine) resumeRun(ctx context.Context, id string) error {
	rec, err := e.Get(ctx, id)
	if err != nil {
		return err
	}
	def, err := e.runSource(ctx, rec)
	if err != nil {
		return err
	}
	prog, err := e.program(ctx, def)
	if err != nil {
		return err
	}
	w := prog.Workflow
	if len(w.Steps) != len(rec.Steps) {
		return fmt.Errorf("its stored steps do not match its definition")
	}
	var lastSeq uint64
	err = e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan(histPrefix(id), store.ScanOptions{Reverse: true}, func(_, v []byte) error {
			var h HistoryEvent
			if err := json.Unmarshal(v, &h); err != nil {
				return err
			}
			lastSeq = h.Seq
			return store.ErrStop
		})
	})
	if err != nil {
		return err
	}
	secrets, _ := lookupSecrets(w, e.opts.LookupSecret, false)
	run := &core.Run{
		ID: id, Status: rec.Status, Params: rec.Params, Output: rec.Output,
		Error: fromOptString(rec.Error), CancelRequested: rec.CancelRequested, TimedOut: rec.TimedOut,
		StartedAt: fromOptTime(rec.StartedAt), EndedAt: fromOptTime(rec.EndedAt),
	}
	ar := &activeRun{rec: *rec, prog: prog, seq: lastSeq, lookup: e.opts.LookupSecret}
	ar.rec.Steps = nil
	ar.init(secrets)
	for i, s := range rec.Steps {
		if s.ID != w.Steps[i].ID {
			return fmt.Errorf("its stored step %d is %q, its definition says %q", i, s.ID, w.Steps[i].ID)
		}
		run.Steps = append(run.Steps, &core.Step{
			ID: s.ID, Status: s.Status, Attempt: s.Attempt, RetriesUsed: s.RetriesUsed,
			Output: s.Output, Error: fromOptString(s.Error), ChildRunID: fromOptString(s.ChildRunID),
			RetryAt: fromOptTime(s.RetryAt), StartedAt: fromOptTime(s.StartedAt), EndedAt: fromOptTime(s.EndedAt),
		})
		if s.Inputs != nil {
			ar.inputs[i] = s.Inputs
		}
		if s.ChildWorkflow != "" {
			ar.children[i] = childInfo{workflow: s.ChildWorkflow, version: s.ChildVersion, hash: s.ChildHash}
		}
	}
	ar.m = core.New(w, run)
	// inputs of steps that start again are resolved anew, with secrets
	for i, s := range run.Steps {
		if s.Status == core.StepRunning {
			ar.inputs[i] = ar.m.Resolve(w.Steps[i].Inputs)
		}
	}
	e.mu.Lock()
	e.active[id] = ar
	e.mu.Unlock()
	e.apply(ar, core.Resume{At: e.now()})
	e.armRunTimeout(ar)
	return nil
}

// armRunTimeout arms the workflow's timeout, counted from the run's start.
func (e *Engine) armRunTimeout(ar *activeRun) {
	ar.mu.Lock()
	timeout, started, ended := ar.prog.Workflow.Timeout, ar.m.Run.StartedAt, ar.m.Run.Status.Terminal()
	ar.mu.Unlock()
	if timeout <= 0 || ended {
		return
	}
	if started.IsZero() {
		started = e.now()
	}
	e.afterFunc(started.Add(timeout).Sub(e.now()), func() {
		e.apply(ar, core.TimedOut{At: e.now()})
	})
}

// runSource is the source a run was made from: its definition, or the
// snapshot stored with a script= child.
func (e *Engine) runSource(ctx context.Context, rec *RunRecord) (*definitionRecord, error) {
	var snap *definitionRecord
	err := e.st.View(ctx, func(tx store.Tx) error {
		data, err := tx.Get(runSrcKey(rec.ID))
		if err != nil {
			return err
		}
		snap = &definitionRecord{}
		return json.Unmarshal(data, snap)
	})
	if err == nil {
		return snap, nil
	}
	if err != store.ErrNotFound {
		return nil, err
	}
	def, err := e.definition(ctx, rec.Workflow, rec.Version)
	if err != nil {
		return nil, fmt.Errorf("cannot find its definition %s version %d: %w", rec.Workflow, rec.Version, err)
	}
	return def, nil
}
