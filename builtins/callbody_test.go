package builtins_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/builtins"
)

// A body whose step context ends while it runs (here: when it logs that it
// is in its loop) ends cancelled, not by the step limit.
func TestBodyCancelledMidCallEndsCancelled(t *testing.T) {
	src := `
def body(ctx):
    ctx.log("looping")
    while True:
        pass
task("t", body)
`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := newStep(t, "t", nil)
	sc.Context = ctx
	sc.Log = writerFunc(func(p []byte) (int, error) {
		if strings.Contains(string(p), "looping") {
			cancel()
		}
		return len(p), nil
	})
	_, err := callStep(t, loadProgram(t, src, nil), sc, 0)
	if err == nil || !strings.HasSuffix(err.Error(), "step cancelled") || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, builtins.ErrTooManySteps) {
		t.Fatalf("err = %v, a step-limit error", err)
	}
}

// A body that fails on its own below the step limit fails with its own
// message, also when it ran close to the limit; one that reaches the limit
// is stopped by it. Bodies called one after the other do not share limits.
func TestStepLimitIsTheBodysOwn(t *testing.T) {
	src := `
def body(ctx):
    for i in range(ctx.inputs["n"]):
        pass
    fail("done")
task("t", body)
`
	prog := loadProgram(t, src, nil)
	for _, tc := range []struct {
		n       int64
		tooMany bool
	}{{10, false}, {150, false}, {5000, true}, {10, false}} {
		sc := newStep(t, "t", nil)
		sc.Inputs = map[string]any{"n": tc.n}
		_, err := callStep(t, prog, sc, 1000)
		if got := errors.Is(err, builtins.ErrTooManySteps); got != tc.tooMany {
			t.Fatalf("n=%d: err = %v, too many steps %v, want %v", tc.n, err, got, tc.tooMany)
		}
		if !tc.tooMany && !strings.HasSuffix(err.Error(), ": done") {
			t.Fatalf("n=%d: err = %v", tc.n, err)
		}
	}
}

// Without a clock of its own a body's time.now() is the real time.
func TestTimeNowWithoutAClockIsRealTime(t *testing.T) {
	src := `
def body(ctx):
    return {"unix": time.now().unix}
task("t", body)
`
	before := time.Now().Unix()
	out, err := runOne(t, src, newStep(t, "t", nil))
	if err != nil {
		t.Fatal(err)
	}
	if u, _ := out["unix"].(int64); u < before || u > time.Now().Unix() {
		t.Fatalf("time.now().unix = %v, want between %d and now", out["unix"], before)
	}
}
