package runtime

// This file: a decision's result as the ops that persist it (see ops.go).

import (
	"encoding/json"
	"fmt"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
)

// prepareInputs resolves a starting step's inputs; secret references
// become their values here and only here.
func (ar *activeRun) prepareInputs(stepID string) {
	i := ar.prog.Workflow.StepIndex(stepID)
	s := ar.prog.Workflow.Steps[i]
	in, err := ar.m.ResolveInputs(s.Inputs)
	if err != nil {
		ar.inputErrs[i] = err
		in = ar.m.Resolve(s.Inputs)
	} else {
		delete(ar.inputErrs, i)
	}
	ar.inputs[i] = in
}

// encode turns a result into the ops of one commit: the changed steps
// and run, the history events, logs of ended attempts, and the removal of
// the active marker when the run ended. State only moves forward: that is
// checked inside the transaction.
func (ar *activeRun) encode(res core.Result) ([]op, []HistoryEvent, error) {
	id := ar.rec.ID
	ws := make([]op, 0, len(res.Changed)+len(res.History)+2)
	ws = append(ws, ar.planOps()...) // a re-plan's removals (dynamic_planner.go)
	for _, sid := range res.Changed {
		i := ar.prog.Workflow.StepIndex(sid)
		rec := ar.stepRecord(i)
		val, err := encodeStep(rec)
		if err != nil {
			return nil, nil, fmt.Errorf("step %s: %w", sid, err)
		}
		progress := stepProgress(rec)
		if ar.takeOverwrite(i) {
			// a planned step takes the index of one a re-plan dropped
			ws = append(ws, setOp(stepKey(id, i), val))
		} else {
			ws = append(ws, op{key: stepKey(id, i), val: val, check: func(old []byte) error {
				prev, err := stepHeader(old)
				if err != nil {
					return fmt.Errorf("step %s of run %s: %v", sid, id, err)
				}
				if progressLess(progress, prev) {
					return fmt.Errorf("step %s of run %s cannot move back (epoch, attempt, phase %v to %v)", sid, id, prev, progress)
				}
				return nil
			}})
		}
		if log, ok := ar.logs[i]; ok {
			delete(ar.logs, i)
			if len(log) > 0 {
				ws = append(ws, setOp(logKey(id, i, rec.Attempt), log))
			}
		}
	}
	if res.RunChanged {
		ar.syncRun()
		val, err := ar.rec.MarshalJSON()
		if err != nil {
			return nil, nil, err
		}
		phase, epoch := runPhase(ar.rec.Status), ar.rec.Epoch
		ws = append(ws, op{key: runKey(id), val: val, check: func(old []byte) error {
			var prev RunRecord
			if err := json.Unmarshal(old, &prev); err != nil {
				return err
			}
			if epoch == prev.Epoch && phase < runPhase(prev.Status) || epoch < prev.Epoch {
				return fmt.Errorf("run %s cannot move back from %s to %s", id, prev.Status, ar.rec.Status)
			}
			return nil
		}})
	}
	history := make([]HistoryEvent, 0, len(res.History))
	for _, r := range res.History {
		ar.seq++
		h := HistoryEvent{Seq: ar.seq, Type: string(r.Type), Time: r.At.UTC(), Step: r.Step, Attempt: r.Attempt, Status: r.Status, Error: builtins.MaskString(r.Error, ar.masks), Child: r.Child, Detail: r.Detail}
		val, err := h.MarshalJSON()
		if err != nil {
			return nil, nil, err
		}
		history = append(history, h)
		ws = append(ws, setOp(histKey(id, h.Seq), val))
	}
	ended := ar.rec.Status.Terminal()
	var notice []byte
	if ended {
		n := outcomeNotice(&ar.rec)
		var err error
		if notice, err = json.Marshal(&n); err != nil {
			return nil, nil, err
		}
	}
	if ended {
		ws = append(ws, fnOp(func(tx store.Tx) error {
			if err := tx.Delete(activeKey(id)); err != nil {
				return err
			}
			return notifyWaiters(tx, id, notice)
		}))
	}
	return ws, history, nil
}

// syncRun copies the machine's run state into the record.
func (ar *activeRun) syncRun() {
	r := ar.m.Run
	ar.rec.Status = r.Status
	ar.rec.Output = builtins.MaskValue(r.Output, ar.masks)
	ar.rec.Error = optString(builtins.MaskString(r.Error, ar.masks))
	ar.rec.StartedAt = optTime(r.StartedAt)
	ar.rec.EndedAt = optTime(r.EndedAt)
	ar.rec.RerunAt = optTime(r.RerunAt)
	ar.rec.CancelRequested = r.CancelRequested
	ar.rec.TimedOut = r.TimedOut
}

// stepRecord is the stored form of step i's state, secrets masked.
func (ar *activeRun) stepRecord(i int) *StepRecord {
	st := ar.m.Run.Steps[i]
	def := ar.prog.Workflow.Steps[i]
	rec := &StepRecord{
		ID: st.ID, Kind: string(def.Kind), Status: st.Status, Attempt: st.Attempt,
		Output:      builtins.MaskValue(st.Output, ar.masks),
		Error:       optString(builtins.MaskString(st.Error, ar.masks)),
		ChildRunID:  optString(st.ChildRunID),
		StartedAt:   optTime(st.StartedAt),
		EndedAt:     optTime(st.EndedAt),
		RetriesUsed: st.RetriesUsed,
		EngineStops: st.EngineStops,
		RetryAt:     optTime(st.RetryAt),
		Epoch:       ar.epochs[i],
		EndError:    optString(builtins.MaskString(st.EndError, ar.masks)),
	}
	rec.Plan, rec.KeepSucceeded = ar.planOf(i), ar.keeps(i) // dynamic_planner.go, dynamic_rerun.go
	if c, ok := ar.children[i]; ok {
		rec.ChildWorkflow, rec.ChildVersion, rec.ChildHash = c.workflow, c.version, c.hash
	}
	if in, ok := ar.inputs[i]; ok && st.Attempt > 0 {
		rec.Inputs = builtins.MaskValue(maskSecretRefs(in), ar.masks)
	}
	return rec
}

// maskSecretRefs shows secret references as *** in records.
func maskSecretRefs(v any) any {
	return dag.ReplaceRefs(v, func(r *dag.Ref) any {
		if r.Kind == dag.RefSecret {
			return "***"
		}
		return nil
	})
}
