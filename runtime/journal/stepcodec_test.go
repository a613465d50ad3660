package journal

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
	"github.com/flowscript/flowscript/store"
)

func TestStepRecordsOnlyMoveForward(t *testing.T) {
	at := time.Now()
	rec := func(epoch, attempt int, status core.StepStatus, retry bool) []byte {
		r := &StepRecord{ID: "s", Status: status, Attempt: attempt, Epoch: epoch}
		if retry {
			r.RetryAt = &at
		}
		v, err := encodeStep(r)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	order := [][]byte{
		rec(0, 0, core.StepPending, false),
		rec(0, 1, core.StepRunning, false),
		rec(0, 1, core.StepPending, true), // failed, waiting for its retry
		rec(0, 2, core.StepRunning, false),
		rec(0, 2, core.StepSucceeded, false),
		rec(1, 2, core.StepPending, false), // reset by a rerun
		rec(1, 3, core.StepRunning, false),
	}
	for i := range order {
		for j := range order {
			a, err := stepHeader(order[i])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := stepHeader(order[j])
			if got, want := progressLess(a, b), i < j; got != want {
				t.Errorf("progressLess(%d, %d) = %v, want %v", i, j, got, want)
			}
		}
	}
	var back StepRecord
	if err := decodeStep(order[4], &back); err != nil || back.Status != core.StepSucceeded || back.Attempt != 2 {
		t.Fatalf("decode: %+v %v", back, err)
	}
	if _, err := stepHeader([]byte(`{"id":"s"}`)); err == nil {
		t.Fatal("a record without a header was accepted")
	}
}

// A run's steps read together take their times from shared arrays: each
// record reads back as written, and each time is its own.
func TestStepsReadTogether(t *testing.T) {
	st := diskStore(t)
	var want []StepRecord
	err := st.Update(context.Background(), func(tx store.Tx) error {
		for i := 0; i < 100; i++ {
			start := time.Date(2026, 12, 3, 10, 0, i, 0, time.UTC)
			end := start.Add(time.Second)
			rec := StepRecord{ID: fmt.Sprintf("s%d", i), Kind: "task", Status: core.StepSucceeded, Attempt: 1, StartedAt: &start, EndedAt: &end}
			if i%3 == 0 {
				rec.EndedAt = nil
			}
			v, err := encodeStep(&rec)
			if err != nil {
				return err
			}
			if err := tx.Set(stepKey("run-s", i), v); err != nil {
				return err
			}
			want = append(want, rec)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []StepRecord
	if err := New(st).View(context.Background(), func(tx *Tx) error {
		var err error
		got, err = tx.Steps("run-s")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("steps read back differ:\n%+v\n%+v", got[:2], want[:2])
	}
	*got[0].StartedAt = time.Time{}
	for i := 1; i < len(got); i++ {
		if !got[i].StartedAt.Equal(*want[i].StartedAt) {
			t.Fatalf("step %d's start changed with step 0's", i)
		}
	}
}
