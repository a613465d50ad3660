package journal

import (
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
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
