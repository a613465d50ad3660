package flowscript

import (
	"context"

	"github.com/flowscript/flowscript/runtime"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// CheckReport is what Check found in a database.
type CheckReport struct {
	Dir string
	// Tables counts the table files whose checksums were verified; Keys
	// and ValueBytes what was read and checked.
	Tables, Keys int
	ValueBytes   int64
	// StoreDamage is what the checksums or the values showed to be wrong
	// (a *CorruptError); nil when they are whole.
	StoreDamage error
	// Runs, Steps, Events and Children count the run records read.
	Runs, Steps, Events, Children int
	// RunsUnreadable is why the run records could not be read at all.
	RunsUnreadable error
	// Problems say what is wrong with the runs' records (a gap in a
	// history, a record that does not decode, links that disagree), one
	// sentence each, sorted.
	Problems []string
}

// Whole reports that Check found nothing wrong.
func (r *CheckReport) Whole() bool {
	return r.StoreDamage == nil && r.RunsUnreadable == nil && len(r.Problems) == 0
}

// Check verifies the database in dir without changing it, as `flowscript
// check` does: every table's checksums, every value, and every run's
// records (history seq from 1 without gaps, records that decode, parent
// and child links that agree). When the database cannot be opened at all
// it returns no report but a *LockedError (another process holds it) or
// the reason, most often a *CorruptError.
func Check(ctx context.Context, dir string) (*CheckReport, error) {
	s, err := badgerstore.OpenReadOnly(dir, badgerstore.Options{})
	if err != nil {
		return nil, openError(err)
	}
	defer s.Close()
	r := &CheckReport{Dir: dir}
	vr, err := s.Verify(ctx)
	r.Tables, r.Keys, r.ValueBytes = vr.Tables, vr.Keys, vr.ValueBytes
	if err != nil {
		r.StoreDamage = openError(err)
	}
	rep, err := runtime.CheckHistories(ctx, s)
	if err != nil {
		r.RunsUnreadable = openError(err)
		return r, nil
	}
	r.Runs, r.Steps, r.Events, r.Children = rep.Runs, rep.Steps, rep.Events, rep.Children
	r.Problems = rep.Problems
	return r, nil
}
