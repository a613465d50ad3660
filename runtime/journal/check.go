package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/flowscript/flowscript/store"
)

// HistoryReport is what Check found in a store.
type HistoryReport struct {
	Runs, Steps, Events, Children int
	// Problems says what is wrong, one sentence each, sorted; empty when
	// every run's records are whole.
	Problems []string
}

// maxReportedProblems bounds Problems; the count of the rest is noted.
const maxReportedProblems = 100

// Check verifies, without changing anything, every run's stored
// records: the run record, its steps and its history decode; history seq
// numbers run from 1 without a gap and match their keys; steps are
// numbered from 0 without a gap; a child's parent exists and lists it,
// and every listed child exists and names its parent; a waited/ mark
// (WaitFor) is empty and names an unfinished run, as the end of a run
// removes its mark in the transaction that ends it.
func Check(ctx context.Context, st store.Store) (*HistoryReport, error) {
	rep := &HistoryReport{}
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	runs := map[string]*RunRecord{}
	steps := map[string][]int{}
	layouts := map[string]int{} // the steps a run's layout lists
	hist := map[string][]uint64{}
	children := map[string][]string{}
	var waited []string
	err := st.View(ctx, func(tx store.Tx) error {
		err := tx.Scan([]byte(prefixRun), store.ScanOptions{}, func(k, v []byte) error {
			id := string(k[len(prefixRun):])
			rec, err := decodeRunRecord(v)
			if err != nil {
				bad("run %s: its record does not decode: %v", id, err)
				return nil
			}
			if rec.ID != id {
				bad("run %s: its record names run %q", id, rec.ID)
			}
			runs[id] = rec
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Scan([]byte(prefixStep), store.ScanOptions{}, func(k, v []byte) error {
			if isLayoutKey(k) {
				id := string(k[len(prefixStep) : len(k)-1])
				recs, err := decodeLayout(v)
				if err != nil {
					bad("run %s: its step layout does not decode: %v", id, err)
					return nil
				}
				layouts[id] = len(recs)
				return nil
			}
			id, n, ok := splitIndexedKey(k[len(prefixStep):], 4)
			if !ok {
				bad("a step key %q has no step index", k)
				return nil
			}
			var rec StepRecord
			if err := decodeStep(v, &rec); err != nil {
				bad("run %s: step %d does not decode: %v", id, n, err)
			}
			steps[id] = append(steps[id], int(n))
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Scan([]byte(prefixHist), store.ScanOptions{}, func(k, v []byte) error {
			id, seq, ok := splitIndexedKey(k[len(prefixHist):], 8)
			if !ok {
				bad("a history key %q has no seq", k)
				return nil
			}
			evs, err := decodeHistoryValue(seq, v)
			switch {
			case err != nil:
				rep.Events++
				bad("run %s: history event %d does not decode: %v", id, seq, err)
				hist[id] = append(hist[id], seq)
				return nil
			case len(evs) == 1 && evs[0].Seq != seq:
				bad("run %s: history event stored under seq %d says seq %d", id, seq, evs[0].Seq)
			}
			// a pack holds the events from seq on (histpack.go)
			for i := range evs {
				rep.Events++
				hist[id] = append(hist[id], seq+uint64(i))
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Scan([]byte(prefixWaited), store.ScanOptions{}, func(k, v []byte) error {
			id := string(k[len(prefixWaited):])
			if len(v) > 0 {
				bad("run %s: its waited mark holds %d bytes (it is written empty)", id, len(v))
			}
			waited = append(waited, id)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Scan([]byte(prefixChild), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			rest := k[len(prefixChild):]
			i := bytes.IndexByte(rest, '/')
			if i < 0 {
				bad("a child key %q names no child", k)
				return nil
			}
			rep.Children++
			children[string(rest[:i])] = append(children[string(rest[:i])], string(rest[i+1:]))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	rep.Runs = len(runs)
	for id := range layouts {
		if _, ok := steps[id]; !ok {
			steps[id] = nil
		}
	}
	for id, idx := range steps {
		if runs[id] == nil {
			bad("run %s: it has step records but no run record", id)
			continue
		}
		// the steps its layout lists need no record (they are pending
		// until their first transition); the others are numbered on from
		// there without a gap
		listed := layouts[id]
		rep.Steps += listed
		next := listed
		for _, n := range idx { // keys come in order
			if n < listed {
				continue
			}
			rep.Steps++
			if n != next && next >= 0 {
				bad("run %s: step %d is missing", id, next)
				next = -1
			} else if next >= 0 {
				next++
			}
		}
	}
	for id, seqs := range hist {
		if runs[id] == nil {
			bad("run %s: it has history but no run record", id)
			continue
		}
		for i, seq := range seqs {
			if seq != uint64(i+1) {
				bad("run %s: its history has a gap: event %d is missing (found %d next)", id, i+1, seq)
				break
			}
		}
	}
	for id, rec := range runs {
		if len(hist[id]) == 0 && rec.StartedAt != nil {
			bad("run %s: it started but has no history", id)
		}
		if rec.ParentRunID == nil {
			continue
		}
		parent := *rec.ParentRunID
		if runs[parent] == nil {
			bad("run %s: its parent %s does not exist", id, parent)
		} else if !contains(children[parent], id) {
			bad("run %s: its parent %s does not list it as a child", id, parent)
		}
	}
	for _, id := range waited {
		switch rec := runs[id]; {
		case rec == nil:
			bad("run %s: it is marked as waited for but has no run record", id)
		case rec.Status.Terminal():
			// its end removes the mark: the steps waiting for it may not
			// have been told
			bad("run %s: it ended %s but is still marked as waited for", id, rec.Status)
		}
	}
	for parent, kids := range children {
		if runs[parent] == nil {
			bad("run %s: it lists children but has no run record", parent)
			continue
		}
		for _, kid := range kids {
			c := runs[kid]
			switch {
			case c == nil:
				bad("run %s: its child %s does not exist", parent, kid)
			case c.ParentRunID == nil || *c.ParentRunID != parent:
				bad("run %s: its child %s names another parent", parent, kid)
			}
		}
	}
	sort.Strings(problems)
	if len(problems) > maxReportedProblems {
		more := len(problems) - maxReportedProblems
		problems = append(problems[:maxReportedProblems], fmt.Sprintf("… and %d more problems", more))
	}
	rep.Problems = problems
	return rep, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// splitIndexedKey splits "<run-id>/<n big-endian bytes>".
func splitIndexedKey(rest []byte, n int) (string, uint64, bool) {
	if len(rest) < n+2 || rest[len(rest)-n-1] != '/' {
		return "", 0, false
	}
	num := rest[len(rest)-n:]
	id := string(rest[:len(rest)-n-1])
	if n == 4 {
		return id, uint64(binary.BigEndian.Uint32(num)), true
	}
	return id, binary.BigEndian.Uint64(num), true
}

func decodeRunRecord(v []byte) (*RunRecord, error) {
	rec := &RunRecord{}
	if err := json.Unmarshal(v, rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func decodeHistoryEvent(v []byte) (*HistoryEvent, error) {
	ev := &HistoryEvent{}
	if err := json.Unmarshal(v, ev); err != nil {
		return nil, err
	}
	return ev, nil
}
