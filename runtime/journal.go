package runtime

// This file: the runtime's side of runtime/journal, which owns every
// record, key and store call.

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/flowscript/flowscript/runtime/journal"
	"github.com/flowscript/flowscript/store"
)

// The records as stored and shown, defined by the journal.
type (
	RunRecord    = journal.RunRecord
	StepRecord   = journal.StepRecord
	HistoryEvent = journal.HistoryEvent
	// HistoryReport is what CheckHistories found in a store.
	HistoryReport = journal.HistoryReport
)

// TimeFormat is how records show times: UTC, RFC 3339, always nine digits
// of nanoseconds.
const TimeFormat = journal.TimeFormat

// Stamp is a time that marshals in TimeFormat (journal.Stamp).
type Stamp = journal.Stamp

// StampOf is t as a Stamp; nil for nil.
func StampOf(t *time.Time) *Stamp { return journal.StampOf(t) }

// CheckHistories verifies, without changing anything, every run's stored
// records (see journal.Check).
func CheckHistories(ctx context.Context, st store.Store) (*HistoryReport, error) {
	return journal.Check(ctx, st)
}

// committer queues the commits of runs with the journal: each run's
// commits land in the order they were submitted, and none lands after one
// of the same run that failed (activeRun.stopped).
type committer struct{ j *journal.Journal }

// It is called under the runs' locks.
func (c committer) submitAll(units [][]journal.Op, runs ...*activeRun) []*journal.Commit {
	if len(runs) == 1 {
		// most commits carry one run's transitions: its flag, in a list
		// made once
		ar := runs[0]
		if ar.stops == nil {
			ar.stops = []*atomic.Bool{&ar.stopped}
		}
		return c.j.Submit(units, ar.stops...)
	}
	stops := make([]*atomic.Bool, len(runs))
	for i, ar := range runs {
		stops[i] = &ar.stopped
	}
	return c.j.Submit(units, stops...)
}

// waitAll waits for commits submitted together and returns the first
// error among them; no run's lock may be held.
func (c committer) waitAll(cms []*journal.Commit) error { return c.j.Wait(cms) }

// write commits fn on its own and waits for it.
func (c committer) write(fn func(tx *journal.Tx) error) error { return c.j.Write(fn) }

// wait commits ops on their own and waits for them.
func (c committer) wait(ops []journal.Op) error { return c.waitAll(c.j.Submit([][]journal.Op{ops})) }
