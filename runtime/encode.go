package runtime

// This file: a decision's result as the ops that persist it (journal.Op).

import (
	"sync"
	"time"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// prepareInputs resolves a starting step's inputs (and a shell step's
// env) when the decision that starts it is taken, so that the attempt
// acts on them and not on the machine's state later. Secret references
// in inputs become their values here and only here; env's become theirs
// when the shell runs.
func (ar *activeRun) prepareInputs(stepID string) {
	i := ar.prog.Workflow.StepIndex(stepID)
	s := ar.prog.Workflow.Steps[i]
	in, err := ar.m.ResolveInputs(s.Inputs)
	if err != nil {
		if ar.inputErrs == nil {
			ar.inputErrs = map[int]error{}
		}
		ar.inputErrs[i] = err
		in = ar.m.Resolve(s.Inputs)
	} else {
		delete(ar.inputErrs, i)
	}
	ar.inputs[i] = in
	if len(s.Env) > 0 {
		if ar.envs == nil {
			ar.envs = map[int]any{}
		}
		ar.envs[i] = ar.m.Resolve(s.Env)
	}
}

// encode turns a result into the ops of one commit: the changed steps
// and run, the history events, logs of ended attempts, and the run's end
// (its waiters' notices) when it ended. State only moves forward: that is
// checked inside the transaction.
func (ar *activeRun) encode(res core.Result) ([]journal.Op, []HistoryEvent, error) {
	id := ar.rec.ID
	ws := make([]journal.Op, 0, len(res.Changed)+len(res.History)+2)
	ws = append(ws, ar.planOps()...) // a re-plan's removals (dynamic_planner.go)
	opt := optionals.Get().(*recordOptionals)
	defer optionals.Put(opt)
	for _, sid := range res.Changed {
		i := ar.prog.Workflow.StepIndex(sid)
		var rec StepRecord
		ar.stepRecord(i, &rec, opt)
		var o journal.Op
		var err error
		if ar.takeOverwrite(i) {
			// a planned step takes the index of one a re-plan dropped
			o, err = journal.ReplaceStep(id, i, &rec)
		} else {
			// called directly, so that rec stays on the stack
			o, err = journal.PutStep(id, i, &rec)
		}
		if err != nil {
			return nil, nil, err
		}
		ws = append(ws, o)
		if log, ok := ar.logs[i]; ok {
			delete(ar.logs, i)
			if len(log) > 0 {
				ws = append(ws, journal.PutLog(id, i, rec.Attempt, log))
			}
		}
	}
	if res.RunChanged {
		ar.syncRun()
		o, err := journal.PutRun(&ar.rec)
		if err != nil {
			return nil, nil, err
		}
		ws = append(ws, o)
	}
	// the core's records become the history events in place: the result
	// is the decision's own, and nothing else holds them
	history := res.History
	for i := range history {
		ar.seq++
		h := &history[i]
		h.Seq, h.Time, h.Error = ar.seq, h.Time.UTC(), ar.maskString(h.Error)
		o, err := journal.AppendHistory(id, h)
		if err != nil {
			return nil, nil, err
		}
		ws = append(ws, o)
	}
	if ar.rec.Status.Terminal() {
		var known *journal.Waiter
		if w := ar.waiter; w != nil {
			known = &journal.Waiter{Run: w.run.rec.ID, Index: w.index, Attempt: w.attempt}
		}
		// a run loaded from the store may have been waited for before
		// marks were written: its end looks at every wait key
		ws = append(ws, journal.EndRun(id, journal.OutcomeOf(&ar.rec), known, ar.loaded))
	}
	return ws, history, nil
}

// syncRun copies the machine's run state into the record.
func (ar *activeRun) syncRun() {
	r := ar.m.Run
	ar.rec.Status = r.Status
	ar.rec.Output = ar.maskValue(r.Output)
	ar.rec.Error = optString(ar.maskString(r.Error))
	ar.rec.StartedAt = optTime(r.StartedAt)
	ar.rec.EndedAt = optTime(r.EndedAt)
	ar.rec.RerunAt = optTime(r.RerunAt)
	ar.rec.CancelRequested = r.CancelRequested
	ar.rec.TimedOut = r.TimedOut
}

// stepRecord is the stored form of step i's state, secrets masked. Its
// optional fields point into o, which the next call overwrites: the
// record is encoded (journal.PutStep) before that, and kept by nobody.
func (ar *activeRun) stepRecord(i int, rec *StepRecord, o *recordOptionals) {
	st := ar.m.Run.Steps[i]
	def := ar.prog.Workflow.Steps[i]
	*rec = StepRecord{
		ID: st.ID, Kind: string(def.Kind), Status: st.Status, Attempt: st.Attempt,
		Output:      ar.maskValue(st.Output),
		Error:       o.str(0, ar.maskString(st.Error)),
		ChildRunID:  o.str(1, st.ChildRunID),
		StartedAt:   o.time(0, st.StartedAt),
		EndedAt:     o.time(1, st.EndedAt),
		RetriesUsed: st.RetriesUsed,
		EngineStops: st.EngineStops,
		RetryAt:     o.time(2, st.RetryAt),
		Epoch:       ar.epochs[i],
		EndError:    o.str(2, ar.maskString(st.EndError)),
	}
	rec.Plan, rec.KeepSucceeded = ar.planOf(i), ar.keeps(i) // dynamic_planner.go, dynamic_rerun.go
	if c, ok := ar.children[i]; ok {
		rec.ChildWorkflow, rec.ChildVersion, rec.ChildHash = c.workflow, c.version, c.hash
	}
	if in, ok := ar.inputs[i]; ok && st.Attempt > 0 {
		rec.Inputs = ar.maskValue(maskSecretRefs(in))
	}
}

// maskSecretRefs shows secret references as *** in records.
func maskSecretRefs(v any) any {
	if m, ok := v.(map[string]any); v == nil || ok && len(m) == 0 {
		return v // nothing to copy
	}
	return dag.ReplaceRefs(v, func(r *dag.Ref) any {
		if r.Kind == dag.RefSecret {
			return "***"
		}
		return nil
	})
}

// maskString is s with the run's secrets masked; a run with no secrets
// (the most common) builds no matcher.
func (ar *activeRun) maskString(s string) string {
	if len(ar.masks) == 0 || s == "" {
		return s
	}
	return builtins.MaskString(s, ar.masks)
}

// maskValue is v with the run's secrets masked.
func (ar *activeRun) maskValue(v any) any {
	if len(ar.masks) == 0 || v == nil {
		return v
	}
	return builtins.MaskValue(v, ar.masks)
}

// recordOptionals holds the optional fields of the step record being
// encoded, so that they take no allocation of their own (stepRecord);
// optionals keeps them between encodes.
var optionals = sync.Pool{New: func() any { return new(recordOptionals) }}

type recordOptionals struct {
	strs  [3]string
	times [3]time.Time
}

// str is optString, pointing into slot k.
func (o *recordOptionals) str(k int, s string) *string {
	if s == "" {
		return nil
	}
	o.strs[k] = s
	return &o.strs[k]
}

// time is optTime, pointing into slot k.
func (o *recordOptionals) time(k int, t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	o.times[k] = t.UTC()
	return &o.times[k]
}
