package runtime

import (
	"context"
	"fmt"
	"strings"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/runtime/journal"
)

// ResolveID turns a run id or a unique prefix of one into the id.
func (e *Engine) ResolveID(ctx context.Context, idOrPrefix string) (string, error) {
	if idOrPrefix == "" {
		return "", &UnknownRunError{ID: idOrPrefix}
	}
	prefix := strings.ToLower(idOrPrefix)
	var matches []string
	err := e.j.View(ctx, func(tx *journal.Tx) (err error) {
		matches, err = tx.RunIDs(prefix, 5)
		return err
	})
	if err != nil {
		return "", err
	}
	switch len(matches) {
	case 0:
		return "", &UnknownRunError{ID: idOrPrefix}
	case 1:
		return matches[0], nil
	}
	for _, m := range matches {
		if m == prefix {
			return m, nil
		}
	}
	return "", inputErrorf("run id prefix %q is ambiguous: it matches %s…", idOrPrefix, strings.Join(matches[:min(3, len(matches))], ", "))
}

// Get returns a run with its steps, the iterations of its for_each and
// loop steps appended.
func (e *Engine) Get(ctx context.Context, idOrPrefix string) (*RunRecord, error) {
	return e.get(ctx, idOrPrefix, true)
}

// stored returns a run with the steps of its definition only, one per
// declared step, as the engine keeps them.
func (e *Engine) stored(ctx context.Context, idOrPrefix string) (*RunRecord, error) {
	return e.get(ctx, idOrPrefix, false)
}

func (e *Engine) get(ctx context.Context, idOrPrefix string, iterations bool) (*RunRecord, error) {
	id, err := e.ResolveID(ctx, idOrPrefix)
	if err != nil {
		return nil, err
	}
	var rec *RunRecord
	err = e.j.View(ctx, func(tx *journal.Tx) error {
		data, err := tx.RunWithSteps(id)
		if err != nil {
			return err
		}
		rec = data
		if !iterations {
			return nil
		}
		return appendIterations(tx, rec) // dynamic_records.go
	})
	if err != nil {
		return nil, err
	}
	normalizeRecord(rec)
	return rec, nil
}

func normalizeRecord(rec *RunRecord) {
	rec.Output = dag.NormalizeNumbers(rec.Output)
	for k, v := range rec.Params {
		rec.Params[k] = dag.NormalizeNumbers(v)
	}
	for i := range rec.Steps {
		rec.Steps[i].Output = dag.NormalizeNumbers(rec.Steps[i].Output)
		rec.Steps[i].Inputs = dag.NormalizeNumbers(rec.Steps[i].Inputs)
	}
}

// ListFilter narrows List.
type ListFilter struct {
	Status   core.RunStatus
	Workflow string
}

// List returns run records (without steps), oldest first.
func (e *Engine) List(ctx context.Context, f ListFilter) ([]RunRecord, error) {
	out := []RunRecord{}
	err := e.j.View(ctx, func(tx *journal.Tx) error {
		return tx.Runs(func(rec *RunRecord) error {
			if (f.Status == "" || rec.Status == f.Status) && (f.Workflow == "" || rec.Workflow == f.Workflow) {
				normalizeRecord(rec)
				out = append(out, *rec)
			}
			return nil
		})
	})
	return out, err
}

// History returns a run's events in order.
func (e *Engine) History(ctx context.Context, idOrPrefix string) ([]HistoryEvent, error) {
	id, err := e.ResolveID(ctx, idOrPrefix)
	if err != nil {
		return nil, err
	}
	var out []HistoryEvent
	err = e.j.View(ctx, func(tx *journal.Tx) (err error) {
		out, err = tx.History(id)
		return err
	})
	return out, err
}

// LogEntry is one step attempt's log.
type LogEntry struct {
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
	Text    string `json:"text"`
}

// Logs returns the logs of a run's step attempts, in step order; step
// narrows them to one step.
func (e *Engine) Logs(ctx context.Context, idOrPrefix, step string) ([]LogEntry, error) {
	rec, err := e.getForStep(ctx, idOrPrefix, step) // dynamic_records.go
	if err != nil {
		return nil, err
	}
	index := -1
	if step != "" {
		for i, s := range rec.Steps {
			if s.ID == step {
				index = i
			}
		}
		if index < 0 {
			return nil, inputErrorf("run %s has no step %q", rec.ID, step)
		}
	}
	var logs []journal.Log
	err = e.j.View(ctx, func(tx *journal.Tx) (err error) {
		logs, err = tx.Logs(rec.ID, index)
		return err
	})
	out := []LogEntry{}
	for _, l := range logs {
		if l.Index < len(rec.Steps) {
			out = append(out, LogEntry{Step: rec.Steps[l.Index].ID, Attempt: l.Attempt, Text: string(l.Text)})
		}
	}
	return out, err
}

// Wait blocks until the run ends (or ctx does) and returns its record.
// A run that is unfinished but not active in this engine cannot end by
// waiting: that is an error saying to resume it.
func (e *Engine) Wait(ctx context.Context, idOrPrefix string) (*RunRecord, error) {
	id, err := e.ResolveID(ctx, idOrPrefix)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	ar := e.active[id]
	e.mu.Unlock()
	if ar != nil {
		select {
		case <-ar.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	rec, err := e.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if ar != nil {
		ar.mu.Lock()
		broken := ar.broken
		ar.mu.Unlock()
		if broken != nil && !rec.Status.Terminal() {
			return rec, fmt.Errorf("run %s stopped: a transition could not be stored (%w); fix the cause, then continue it with flowscript resume", id, broken)
		}
	}
	if !rec.Status.Terminal() && ar == nil {
		return rec, fmt.Errorf("run %s is unfinished and not running here; continue it with flowscript resume", id)
	}
	return rec, nil
}

// WaitTree waits for a run and then for every run of its tree that this
// engine is running, detached children included, and returns the run's
// record.
func (e *Engine) WaitTree(ctx context.Context, idOrPrefix string) (*RunRecord, error) {
	rec, err := e.Wait(ctx, idOrPrefix)
	if err != nil {
		return rec, err
	}
	for {
		var open []*activeRun
		e.mu.Lock()
		for _, ar := range e.active {
			if ar.rec.RootRunID == rec.RootRunID {
				open = append(open, ar)
			}
		}
		e.mu.Unlock()
		if len(open) == 0 {
			return rec, nil
		}
		for _, ar := range open {
			select {
			case <-ar.done:
			case <-ctx.Done():
				return rec, ctx.Err()
			}
		}
	}
}
