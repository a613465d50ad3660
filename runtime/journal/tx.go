package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/flowscript/flowscript/store"
)

// Tx is a transaction of the journal: the reads and writes of records
// the runtime makes, by name. It is valid only inside the function it
// was given to.
type Tx struct{ tx store.Tx }

// encodeRun is a run record as stored (its steps are stored apart).
func encodeRun(rec *RunRecord) ([]byte, error) {
	if len(rec.Steps) > 0 {
		return rec.MarshalJSON()
	}
	return appendRun(make([]byte, 0, 512), rec)
}

func decodeRun(id string, data []byte) (*RunRecord, error) {
	rec := &RunRecord{}
	if err := json.Unmarshal(data, rec); err != nil {
		return nil, fmt.Errorf("run %s: damaged record: %v", id, err)
	}
	return rec, nil
}

// Run reads a run's record, without its steps; a missing run is an error
// wrapping ErrNotFound.
func (t *Tx) Run(id string) (*RunRecord, error) {
	data, err := t.tx.Get(runKey(id))
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return decodeRun(id, data)
}

// RunBytes is run id's record as it is stored (a copy): a resume compares
// it with what it read before to see whether the run moved meanwhile.
func (t *Tx) RunBytes(id string) ([]byte, error) {
	data, err := t.tx.Get(runKey(id))
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	return append([]byte(nil), data...), nil
}

// RunExists reports whether run id was created.
func (t *Tx) RunExists(id string) (bool, error) {
	_, err := t.tx.Get(runKey(id))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Steps reads the steps of a run, in declaration order.
func (t *Tx) Steps(id string) ([]StepRecord, error) {
	steps := []StepRecord{}
	var times timeSlab
	// a run's layout (layout.go) sorts first; with one, the records'
	// indices say which listed steps have records
	var layout []byte
	var indices []int
	prefix := stepPrefix(id)
	err := t.tx.Scan(prefix, store.ScanOptions{}, func(k, v []byte) error {
		if len(k) == len(prefix) {
			layout = bytes.Clone(v)
			return nil
		}
		if layout != nil {
			i, ok := stepIndex(prefix, k)
			if !ok {
				return fmt.Errorf("run %s: a step key %q has no step index", id, k)
			}
			indices = append(indices, i)
		}
		// decoded in its place: a record of its own would be one more
		// allocation a step (the decoder may hand it to encoding/json)
		steps = append(steps, StepRecord{})
		if err := decodeStepIn(v, &steps[len(steps)-1], &times); err != nil {
			return fmt.Errorf("run %s: damaged step record: %v", id, err)
		}
		return nil
	})
	if err != nil || layout == nil {
		return steps, err
	}
	steps, err = mergeLayout(layout, steps, indices)
	if err != nil {
		return nil, fmt.Errorf("run %s: %v", id, err)
	}
	return steps, nil
}

// PutRunRecord rewrites a run's record as it is, outside any transition
// (a cancel requested of a run no process runs).
func (t *Tx) PutRunRecord(rec *RunRecord) error {
	val, err := encodeRun(rec)
	if err != nil {
		return err
	}
	return t.tx.Set(runKey(rec.ID), val)
}

// Runs calls fn with every run record (without steps), by id.
func (t *Tx) Runs(fn func(*RunRecord) error) error {
	return t.tx.Scan([]byte(prefixRun), store.ScanOptions{}, func(k, v []byte) error {
		rec, err := decodeRun(string(k[len(prefixRun):]), v)
		if err != nil {
			return err
		}
		return fn(rec)
	})
}

// RunIDs returns the ids of the runs that begin with prefix, at most max
// of them (max+1, to tell that there are more).
func (t *Tx) RunIDs(prefix string, max int) ([]string, error) {
	var ids []string
	err := t.tx.Scan(runKey(prefix), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
		ids = append(ids, string(k[len(prefixRun):]))
		if len(ids) > max {
			return store.ErrStop
		}
		return nil
	})
	return ids, err
}

// Unfinished returns the ids of the runs that have not ended.
func (t *Tx) Unfinished() ([]string, error) {
	var ids []string
	err := t.tx.Scan([]byte(prefixActive), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
		ids = append(ids, string(k[len(prefixActive):]))
		return nil
	})
	return ids, err
}

// MarkUnfinished marks a run unfinished again (a rerun).
func (t *Tx) MarkUnfinished(id string) error { return t.tx.Set(activeKey(id), nil) }

// History reads a run's history, in order: each key holds one event or
// a pack of them (histpack.go).
func (t *Tx) History(id string) ([]HistoryEvent, error) {
	out := []HistoryEvent{}
	err := t.tx.Scan(histPrefix(id), store.ScanOptions{}, func(k, v []byte) error {
		evs, err := decodeHistoryAt(k, v)
		if err != nil {
			return err
		}
		out = append(out, evs...)
		return nil
	})
	return out, err
}

// LastSeq is the seq of a run's last history event, 0 for none.
func (t *Tx) LastSeq(id string) (uint64, error) {
	var last uint64
	err := t.tx.Scan(histPrefix(id), store.ScanOptions{Reverse: true}, func(k, v []byte) error {
		evs, err := decodeHistoryAt(k, v)
		if err != nil {
			return err
		}
		last = evs[len(evs)-1].Seq
		return store.ErrStop
	})
	return last, err
}

// decodeHistoryAt decodes the events stored under a history key.
func decodeHistoryAt(k, v []byte) ([]HistoryEvent, error) {
	_, seq, ok := splitHistKey(k)
	if !ok {
		return nil, fmt.Errorf("a history key %q has no seq", k)
	}
	return decodeHistoryValue(seq, v)
}

// A Log is the log of one step attempt.
type Log struct {
	Index, Attempt int
	Text           []byte
}

// Logs reads the logs of a run's step attempts, by step index then
// attempt; index >= 0 narrows them to one step.
func (t *Tx) Logs(id string, index int) ([]Log, error) {
	prefix := logPrefix(id)
	if index >= 0 {
		prefix = logStepPrefix(id, index)
	}
	var out []Log
	err := t.tx.Scan(prefix, store.ScanOptions{}, func(k, v []byte) error {
		i, attempt, ok := decodeLogKey(id, k)
		if ok {
			out = append(out, Log{Index: i, Attempt: attempt, Text: bytes.Clone(v)})
		}
		return nil
	})
	return out, err
}

// Relayout moves an ended run onto another layout of its steps (rerun
// --latest onto a new version): its record becomes next, its steps
// next.Steps, and the logs of each old step move to its new index, by
// newIndex (a step gone, -1, loses its logs).
func (t *Tx) Relayout(old, next *RunRecord, newIndex func(step string) int) error {
	id := old.ID
	logs, err := t.Logs(id, -1)
	if err != nil {
		return err
	}
	for _, l := range logs {
		if err := t.tx.Delete(logKey(id, l.Index, l.Attempt)); err != nil {
			return err
		}
	}
	for _, l := range logs {
		if l.Index >= len(old.Steps) {
			continue
		}
		if ni := newIndex(old.Steps[l.Index].ID); ni >= 0 {
			if err := t.tx.Set(logKey(id, ni, l.Attempt), l.Text); err != nil {
				return err
			}
		}
	}
	for i := range next.Steps {
		val, err := encodeStep(&next.Steps[i])
		if err != nil {
			return err
		}
		if err := t.tx.Set(stepKey(id, i), val); err != nil {
			return err
		}
	}
	for i := len(next.Steps); i < len(old.Steps); i++ {
		if err := t.tx.Delete(stepKey(id, i)); err != nil {
			return err
		}
	}
	// every step of the new layout has its record now
	if err := t.tx.Delete(stepPrefix(id)); err != nil {
		return err
	}
	bare := *next
	bare.Steps = nil
	return t.PutRunRecord(&bare)
}

// AddChild lists child among the children of run parent.
func (t *Tx) AddChild(parent, child string) error { return t.tx.Set(childKey(parent, child), nil) }

// Children returns the ids of the runs parent spawned, in creation order.
func (t *Tx) Children(parent string) ([]string, error) {
	var kids []string
	prefix := childPrefix(parent)
	err := t.tx.Scan(prefix, store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
		kids = append(kids, string(k[len(prefix):]))
		return nil
	})
	return kids, err
}

// AddWaiter makes a step attempt of run waiter wait for run's end: the
// transaction that ends run writes the attempt's notice.
func (t *Tx) AddWaiter(run, waiter string, index, attempt int) error {
	return t.tx.Set(waitKey(run, waiter, index, attempt), nil)
}

// WaitFor makes a step attempt wait for an existing run (one reused
// through an idempotency key): if the run is unfinished, the attempt
// becomes one of its waiters and the run's record is rewritten as it is,
// so that an end committed meanwhile makes this transaction conflict and
// start again; if it ended, its record is returned, for the caller to
// write the notice.
func (t *Tx) WaitFor(run, waiter string, index, attempt int) (ended *RunRecord, err error) {
	data, err := t.tx.Get(runKey(run))
	if err != nil {
		return nil, err
	}
	rec, err := decodeRun(run, data)
	if err != nil {
		return nil, err
	}
	if rec.Status.Terminal() {
		return rec, nil
	}
	if err := t.tx.Set(runKey(run), data); err != nil {
		return nil, err
	}
	// the run's end looks for waiters it does not know of by this mark
	if err := t.tx.Set(waitedKey(run), nil); err != nil {
		return nil, err
	}
	return nil, t.AddWaiter(run, waiter, index, attempt)
}

// Binding reads the run an idempotency key of a workflow is bound to
// ("" for none), and whether that run is unfinished.
func (t *Tx) Binding(workflow, key string) (bound string, running bool, err error) {
	v, err := t.tx.Get(idemKey(workflow, key))
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	bound = string(v)
	_, err = t.tx.Get(activeKey(bound))
	if errors.Is(err, store.ErrNotFound) {
		return bound, false, nil
	}
	return bound, err == nil, err
}

// Bind binds an idempotency key of a workflow to run id.
func (t *Tx) Bind(workflow, key, id string) error {
	return t.tx.Set(idemKey(workflow, key), []byte(id))
}

// PutRunSource stores the source snapshot of a script= child.
func (t *Tx) PutRunSource(id string, src *Definition) error {
	val, err := json.Marshal(src)
	if err != nil {
		return err
	}
	return t.tx.Set(runSrcKey(id), val)
}

// RunSource reads the snapshot a script= child runs; a run of a
// registered definition has none (ErrNotFound).
func (t *Tx) RunSource(id string) (*Definition, error) {
	data, err := t.tx.Get(runSrcKey(id))
	if err != nil {
		return nil, err
	}
	def := &Definition{}
	return def, json.Unmarshal(data, def)
}

// VersionOf returns the version of workflow name that holds the content
// of hash, 0 for none.
func (t *Tx) VersionOf(name, hash string) (int, error) {
	v, err := t.tx.Get(defHashKey(name, hash))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(string(v))
	return n, nil
}

// LatestVersion is the highest registered version of name, 0 for none.
func (t *Tx) LatestVersion(name string) (int, error) {
	v, err := t.tx.Get(defMetaKey(name))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, _ := strconv.Atoi(string(v))
	return n, nil
}

// Definition reads a registered version; version 0 is the latest. One
// not registered is an error wrapping ErrNotFound.
func (t *Tx) Definition(name string, version int) (*Definition, error) {
	if version == 0 {
		v, err := t.tx.Get(defMetaKey(name))
		if err != nil {
			return nil, err
		}
		version, _ = strconv.Atoi(string(v))
	}
	data, err := t.tx.Get(defKey(name, version))
	if err != nil {
		return nil, err
	}
	def := &Definition{}
	return def, json.Unmarshal(data, def)
}

// PutDefinition stores a version of a definition, finds its content by
// hash again, and raises the name's latest version to it. Reading and
// writing the latest version serialises concurrent registers of a name.
func (t *Tx) PutDefinition(def *Definition, latest int) error {
	val, err := json.Marshal(def)
	if err != nil {
		return err
	}
	if err := t.tx.Set(defKey(def.Name, def.Version), val); err != nil {
		return err
	}
	if err := t.tx.Set(defHashKey(def.Name, def.Hash), []byte(strconv.Itoa(def.Version))); err != nil {
		return err
	}
	return t.tx.Set(defMetaKey(def.Name), []byte(strconv.Itoa(max(latest, def.Version))))
}

// DefinitionNames lists the names of the registered workflows.
func (t *Tx) DefinitionNames() ([]string, error) {
	var names []string
	err := t.tx.Scan([]byte(prefixDefMeta), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
		names = append(names, string(k[len(prefixDefMeta):]))
		return nil
	})
	return names, err
}

// Definitions calls fn with every registered version, by name and
// version.
func (t *Tx) Definitions(fn func(*Definition) error) error {
	return t.tx.Scan([]byte(prefixDef), store.ScanOptions{}, func(k, v []byte) error {
		var d Definition
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("definition %q: damaged record: %v", k, err)
		}
		return fn(&d)
	})
}

// RunWithSteps reads a run's record and its steps.
func (t *Tx) RunWithSteps(id string) (*RunRecord, error) {
	rec, err := t.Run(id)
	if err != nil {
		return nil, err
	}
	rec.Steps, err = t.Steps(id)
	return rec, err
}

// deleteKeys deletes the keys under prefix from start on (nil: all) that
// keep accepts (nil: all).
func (t *Tx) deleteKeys(prefix, start []byte, keep func(k []byte) bool) error {
	var keys [][]byte
	err := t.tx.Scan(prefix, store.ScanOptions{Start: start, KeysOnly: true}, func(k, _ []byte) error {
		if keep == nil || keep(k) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := t.tx.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
