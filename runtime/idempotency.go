package runtime

import (
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/journal"
)

// Idempotency strategies (defined in dag).
const (
	ReturnExisting = dag.ReturnExisting
	FailExisting   = dag.FailExisting
	FailOnRunning  = dag.FailOnRunning
)

// existingRun is returned from inside a creation transaction when the
// idempotency key is bound and the strategy reuses that run.
type existingRun struct{ id string }

func (e *existingRun) Error() string { return "run " + e.id + " has this idempotency key" }

// bindKey checks an idempotency key inside the transaction that creates
// run id, and binds it. Reading and writing the key serialises
// concurrent starts with the same key: exactly one creates a run.
func bindKey(tx *journal.Tx, workflow, key, strategy, id string) error {
	if key == "" {
		return nil
	}
	bound, running, err := tx.Binding(workflow, key)
	if err != nil {
		return err
	}
	if bound != "" {
		reuse, err := onBound(strategy, workflow, key, bound, running)
		if err != nil {
			return err
		}
		if reuse {
			return &existingRun{id: bound}
		}
	}
	return tx.Bind(workflow, key, id)
}

// onBound is what a start (of a run, or of a child by a sub_workflow
// step) does when its key is bound to run bound, by the strategy: reuse
// that run, refuse with an error, or (neither) start a new run that takes
// the key. running says whether bound is unfinished.
func onBound(strategy, workflow, key, bound string, running bool) (reuse bool, err error) {
	switch strategy {
	case FailExisting:
		return false, inputErrorf("idempotency key %q of %s is already bound to run %s", key, workflow, bound)
	case FailOnRunning:
		if running {
			return false, inputErrorf("idempotency key %q of %s is bound to run %s, which is still running", key, workflow, bound)
		}
		return false, nil
	}
	return true, nil
}

// validStrategy refuses what is not a strategy ("" is the default).
func validStrategy(s string) error {
	if s == "" || dag.IsIdempotencyStrategy(s) {
		return nil
	}
	return inputErrorf("idempotency strategy %q is not one of %s", s, dag.StrategyList())
}
