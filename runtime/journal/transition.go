package journal

import (
	"errors"
	"fmt"

	"github.com/flowscript/flowscript/store"
)

// This file: the ops that persist a transition (see Op).

// PutStep writes step index of run runID. State only moves forward: the
// op fails, inside the transaction, if the stored step is further along
// (epoch, attempt, phase).
func PutStep(runID string, index int, rec *StepRecord) (Op, error) {
	key, room := keyAndValue(len(prefixStep)+len(runID)+1+4+256, func(b []byte) []byte { return appendStepKey(b, runID, index) })
	val, err := appendEncodedStep(room, rec)
	if err != nil {
		return Op{}, fmt.Errorf("step %s: %w", rec.ID, err)
	}
	return Op{key: key, val: val, forward: stepForwardOf(runID, rec)}, nil
}

func stepForwardOf(runID string, rec *StepRecord) forward {
	p := stepProgress(rec)
	return forward{kind: stepForward, progress: [3]int32{int32(p[0]), int32(p[1]), int32(p[2])}, name: rec.ID, run: runID}
}

const (
	noCheck uint8 = iota
	stepForward
	runForward
)

// forward is the check that a record only moves forward. It is kept
// small: every op carries one, and a decision of thousands of spawns
// holds tens of thousands of ops until they are written.
type forward struct {
	kind uint8 // noCheck, stepForward or runForward
	// progress is a step's (epoch, attempt, phase), or a run's (epoch, 0,
	// phase), as stored in a step record's header (32 bits each)
	progress [3]int32
	run      string
	// name is the step's id, or the run's new status, for the error
	name string
}

func (f *forward) prog() [3]int {
	return [3]int{int(f.progress[0]), int(f.progress[1]), int(f.progress[2])}
}

// View is check, for a store that shows the stored record in place
// (viewTx).
func (f *forward) View(old []byte) error { return f.check(old) }

func (f *forward) check(old []byte) error {
	if f.kind == stepForward {
		prev, err := stepHeader(old)
		if err != nil {
			return fmt.Errorf("step %s of run %s: %v", f.name, f.run, err)
		}
		if progressLess(f.prog(), prev) {
			return fmt.Errorf("step %s of run %s cannot move back (epoch, attempt, phase %v to %v)", f.name, f.run, prev, f.prog())
		}
		return nil
	}
	// only what the check compares: decoding the whole record (its
	// times, params, output) was most of a child's start and end
	status, epoch, err := runProgress(old)
	if err != nil {
		return err
	}
	if e, phase := int(f.progress[0]), int(f.progress[2]); e == epoch && phase < runPhase(status) || e < epoch {
		return fmt.Errorf("run %s cannot move back from %s to %s", f.run, status, f.name)
	}
	return nil
}

// PutRun writes a run's record (its steps are written apart, by PutStep).
// It only moves forward: within an epoch, from pending to running to
// ended; a lower epoch never replaces a higher one.
func PutRun(rec *RunRecord) (Op, error) {
	var key, val []byte
	var err error
	if len(rec.Steps) > 0 {
		key = runKey(rec.ID)
		val, err = encodeRun(rec)
	} else {
		var room []byte
		key, room = keyAndValue(len(prefixRun)+len(rec.ID)+512, func(b []byte) []byte { return append(append(b, prefixRun...), rec.ID...) })
		val, err = appendRun(room, rec)
	}
	if err != nil {
		return Op{}, err
	}
	return Op{key: key, val: val, forward: forward{kind: runForward, progress: [3]int32{int32(rec.Epoch), 0, int32(runPhase(rec.Status))}, name: string(rec.Status), run: rec.ID}}, nil
}

// AppendHistory writes one event of a run's history: under its seq, or,
// when the transaction has just written the run's event before it, into
// that event's key (histpack.go).
func AppendHistory(runID string, h *HistoryEvent) (Op, error) {
	key, room := keyAndValue(len(prefixHist)+len(runID)+1+8+128, func(b []byte) []byte { return appendHistKey(b, runID, h.Seq) })
	return Op{key: key, val: appendHistory(room, h), history: true}, nil
}

// PutLog writes the log of an ended step attempt; log must not change
// afterwards (the store may keep it instead of copying it).
func PutLog(runID string, index, attempt int, log []byte) Op {
	return setOp(logKey(runID, index, attempt), log)
}

// A Waiter is a step attempt of a run that waits for another run's end.
type Waiter struct {
	Run            string
	Index, Attempt int
}

// EndRun is the op of a run's end: the run is no longer unfinished, and
// every step attempt waiting for it gets n as its notice, in this
// transaction. known is the waiter the caller knows of (the run's parent
// step, whose wait key the run's creation wrote), or nil; other waiters
// (WaitFor) are found by the mark they left, or, with all set, by
// scanning every wait key of the run (a run created before marks were
// written).
func EndRun(runID string, n Notice, known *Waiter, all bool) Op {
	return Func(func(tx *Tx) error {
		if err := tx.tx.Delete(activeKey(runID)); err != nil {
			return err
		}
		if !all {
			_, err := tx.tx.Get(waitedKey(runID))
			switch {
			case err == nil:
				all = true
				if err := tx.tx.Delete(waitedKey(runID)); err != nil {
					return err
				}
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		if all {
			// a scan of the transaction's own writes sorts them all:
			// only when a waiter may be unknown
			return notifyWaiters(tx.tx, runID, n)
		}
		if known == nil {
			return nil
		}
		k := waitKey(runID, known.Run, known.Index, known.Attempt)
		if _, err := tx.tx.Get(k); errors.Is(err, store.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		if err := tx.PutNotice(known.Run, runID, known.Index, known.Attempt, n); err != nil {
			return err
		}
		return tx.tx.Delete(k)
	})
}

// Create is the ops that create a run: the layout of its steps, all
// pending (steps holds their ids and kinds; layout.go) — or, for a run
// whose layout would pass maxLayoutBytes, a pending record a step —, then, in one op,
// its record, its unfinished marker and what with writes (an
// idempotency binding, a child's wait key). A run whose record is missing
// does not exist, so a creation cut between two transactions by a crash
// leaves nothing half made; a run that already exists fails the op.
func Create(rec *RunRecord, steps []StepRecord, with func(tx *Tx) error) ([]Op, error) {
	runVal, err := encodeRun(rec)
	if err != nil {
		return nil, err
	}
	id := rec.ID
	var ops []Op
	if size := layoutSize(steps); size <= maxLayoutBytes {
		// the steps' pending records are not written: their layout
		// says which steps the run has (layout.go)
		ops = append(make([]Op, 0, 2), layoutOp(id, steps, size))
	} else {
		// a layout this large would not fit one value on every store
		// (a NATS message): a pending record a step, as before layouts,
		// which the committer cuts over as many transactions as needed
		ops = make([]Op, 0, len(steps)+1)
		for i := range steps {
			op, err := ReplaceStep(id, i, &steps[i])
			if err != nil {
				return nil, err
			}
			ops = append(ops, op)
		}
	}
	return append(ops, Func(func(tx *Tx) error {
		if _, err := tx.tx.Get(runKey(id)); err == nil {
			return fmt.Errorf("run %s already exists", id)
		}
		if with != nil {
			if err := with(tx); err != nil {
				return err
			}
		}
		if err := tx.tx.Set(runKey(id), runVal); err != nil {
			return err
		}
		return tx.tx.Set(activeKey(id), nil)
	})), nil
}

// ReplaceStep writes step index of run runID over whatever record is
// stored there, without the forward-only check: a planned step taking the
// index of a step a re-plan dropped.
func ReplaceStep(runID string, index int, rec *StepRecord) (Op, error) {
	val, err := encodeStep(rec)
	if err != nil {
		return Op{}, fmt.Errorf("step %s: %w", rec.ID, err)
	}
	return setOp(stepKey(runID, index), val), nil
}

// DropStepsFrom removes the step records of run runID from index n on
// (the steps past a run's last after a re-plan, or those of a plan whose
// commit a crash cut short).
func DropStepsFrom(runID string, n int) Op {
	return Func(func(tx *Tx) error {
		return tx.deleteKeys(stepPrefix(runID), stepKey(runID, n), nil)
	})
}

// DropLogsFrom removes the logs of run runID's steps from index from on
// (the logs of the steps a re-plan dropped).
func DropLogsFrom(runID string, from int) Op {
	return Func(func(tx *Tx) error {
		return tx.deleteKeys(logPrefix(runID), nil, func(k []byte) bool {
			i, _, ok := decodeLogKey(runID, k)
			return ok && i >= from
		})
	})
}
