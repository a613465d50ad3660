package builtins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	libtime "go.starlark.net/lib/time"
	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/dag"
)

// DefaultBodyMaxSteps bounds the Starlark execution steps of one step body
// attempt when CallBody is given 0.
const DefaultBodyMaxSteps = 100_000_000

// MaxTaskOutputBytes caps the JSON encoding of what a task body returns.
const MaxTaskOutputBytes = 1 << 20

// ErrTooManySteps is wrapped by the error of a body stopped by its
// execution-step limit.
var ErrTooManySteps = errors.New("too many execution steps")

// StepContext is what a running step body can reach.
type StepContext struct {
	// Context is cancelled on step timeout or run cancel.
	Context                 context.Context
	RunID, StepID, Workflow string
	// Attempt counts from 1.
	Attempt int
	// Inputs are resolved, plain data (secret values already substituted
	// where inputs used secret(...)).
	Inputs map[string]any
	Params map[string]any
	// Secret resolves a declared secret; it fails for an undeclared or
	// missing one. nil: the step has no secrets.
	Secret func(name string) (string, error)
	// Log is the step's log; everything written here must already be masked
	// (see Masker). nil: discarded.
	Log io.Writer
	// Dir is the workspace directory: sh() runs there (dir= relative to it).
	Dir string
	// Now is the clock; nil: time.Now. Tests make the clock deterministic.
	Now func() time.Time
	// HTTPClient serves http.*; nil: a default client with a 60 s timeout.
	HTTPClient *http.Client
	// MaxOutputBytes caps each captured stream of sh(); 0: 1 MiB.
	MaxOutputBytes int
	// Masks are the secret values of the run: sh() masks them in what it
	// captures, also where the cap cuts through one.
	Masks []string
	// HTTPAllow, when not nil, lists the hosts http.* may reach (see
	// hostAllowed); nil: $FLOWSCRIPT_HTTP_ALLOW, else every host.
	HTTPAllow []string
	// MaxMemory bounds the heap growth of the attempt, in bytes; 0:
	// BodyMaxMemory().
	MaxMemory uint64
	// Builder, set for a planner step's body, records the steps the body
	// declares with the definition builtins.
	Builder *Builder
}

func (sc *StepContext) context() context.Context {
	if sc.Context == nil {
		return context.Background()
	}
	return sc.Context
}

func (sc *StepContext) log() io.Writer {
	if sc.Log == nil {
		return io.Discard
	}
	return sc.Log
}

func (sc *StepContext) now() time.Time {
	if sc.Now == nil {
		return time.Now()
	}
	return sc.Now()
}

const stepContextKey = "flowscript.step"

// SetStepContext makes the run-time builtins called on thread act for the
// step sc. Without one they refuse to run (as while a workflow is declared).
func SetStepContext(thread *starlark.Thread, sc *StepContext) {
	thread.SetLocal(stepContextKey, sc)
}

// StepContextOf returns the step context set on thread, or nil.
func StepContextOf(thread *starlark.Thread) *StepContext {
	sc, _ := thread.Local(stepContextKey).(*StepContext)
	return sc
}

// BodyError is how a step body failed: a Starlark error, fail(), the step's
// context ending, the step limit, or an output that cannot be kept.
type BodyError struct {
	// Pos is the innermost script position involved; zero when unknown.
	Pos dag.Pos
	// Msg says what went wrong, without the position.
	Msg string
	// Backtrace is the Starlark traceback, for the step's log; "" when none.
	Backtrace string
	// Chain is the call chain when the error was raised in a function the
	// body called (see CallChain); Error prints it first.
	Chain []string

	cause error
}

// Error is "file:line:col: message", or the message alone without a position.
func (e *BodyError) Error() string {
	if e.Pos.File == "" || e.Pos.Line == 0 {
		return e.Msg
	}
	return (&dag.Error{Pos: e.Pos, Msg: e.Msg, Chain: e.Chain}).Error()
}

// Unwrap gives what caused it: a context error, ErrTooManySteps, or the
// error a builtin returned.
func (e *BodyError) Unwrap() error { return e.cause }

// CallBody calls a task body with the ctx of sc on a fresh thread, and
// returns what it returned: a dict (as plain data) or None (a nil map).
// maxSteps bounds its Starlark execution steps; 0 means
// DefaultBodyMaxSteps. The thread is cancelled when sc.Context ends;
// print() writes to sc.Log. Errors are *BodyError values.
func CallBody(sc *StepContext, body starlark.Callable, maxSteps uint64) (out map[string]any, err error) {
	if sc == nil {
		return nil, errors.New("builtins.CallBody: no step context")
	}
	if body == nil {
		return nil, &BodyError{Msg: fmt.Sprintf("step %q has no body to run", sc.StepID)}
	}
	ctx := sc.context()
	if ctx.Err() != nil {
		return nil, stoppedError(ctx, dag.Pos{})
	}
	if maxSteps == 0 {
		maxSteps = DefaultBodyMaxSteps
	}
	c := &bodyCall{}
	thread := &c.thread
	thread.Name = sc.StepID
	thread.Print = printToLog
	// without OnMaxSteps the thread cancels itself at the limit; Steps
	// reaching maxSteps afterwards says that this is why it stopped
	thread.SetMaxExecutionSteps(maxSteps)
	SetStepContext(thread, sc)
	if sc.Builder != nil {
		SetBuilder(thread, sc.Builder)
	}
	if sc.Now != nil {
		// else time.now() reads the real clock, as sc.now() does
		libtime.SetNow(thread, c.now)
	}
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, c.contextEnded)
		defer stop()
	}
	memLimit := sc.MaxMemory
	if memLimit == 0 {
		memLimit = BodyMaxMemory()
	}
	mem := &c.mem
	mem.start(thread, memLimit)
	defer mem.Stop()
	defer func() {
		if r := recover(); r != nil {
			out = nil
			err = &BodyError{Pos: innermostPos(thread.CallStack()), Msg: fmt.Sprintf("internal error while running the step body: %v", r)}
		}
	}()

	c.ctx.sc = sc
	c.args[0] = &c.ctx
	v, err := starlark.Call(thread, body, c.args[:], nil)
	if err != nil {
		if mem.Exceeded() {
			return nil, memoryError(err, memLimit)
		}
		return nil, bodyError(ctx, err, thread.ExecutionSteps() >= maxSteps, maxSteps)
	}
	return taskOutput(v, body)
}

// bodyCall holds what one CallBody sets up, in one allocation: the
// thread, the body's ctx argument and the memory watch. Nothing of it is
// used again after the call (a late Cancel from the step's context or the
// memory sampler lands on this call's thread only).
type bodyCall struct {
	thread starlark.Thread
	ctx    stepCtx
	args   [1]starlark.Value
	mem    MemoryWatch
}

func (c *bodyCall) now() (time.Time, error) { return c.ctx.sc.now(), nil }

func (c *bodyCall) contextEnded() { c.thread.Cancel("the step's context ended") }

// printToLog is a body thread's print(): a line in the step's log.
func printToLog(thread *starlark.Thread, msg string) {
	fmt.Fprintln(StepContextOf(thread).log(), msg)
}

// ErrTooMuchMemory is wrapped by the error of a body stopped by its memory
// limit.
var ErrTooMuchMemory = errors.New("too much memory")

func memoryError(err error, limit uint64) *BodyError {
	be := &BodyError{
		Msg:   fmt.Sprintf("the step body grew the heap by more than %s and was stopped (the step memory limit; raise it with $%s or the engine's BodyMaxMemory)", byteSize(int(limit)), MaxStepMemoryEnv),
		cause: ErrTooMuchMemory,
	}
	var ee *starlark.EvalError
	if errors.As(err, &ee) {
		be.Pos = innermostPos(ee.CallStack)
		be.Backtrace = ee.Backtrace()
	}
	return be
}

// stoppedError is the error of a body whose context ended.
func stoppedError(ctx context.Context, pos dag.Pos) *BodyError {
	e := contextError("step", ctx)
	return &BodyError{Pos: pos, Msg: e.Error(), cause: e}
}

func bodyError(ctx context.Context, err error, tooMany bool, maxSteps uint64) error {
	var ee *starlark.EvalError
	if !errors.As(err, &ee) {
		if ctx.Err() != nil {
			return stoppedError(ctx, dag.Pos{})
		}
		return &BodyError{Msg: err.Error(), cause: err}
	}
	pos := innermostPos(ee.CallStack)
	if ctx.Err() != nil {
		be := stoppedError(ctx, pos)
		be.Backtrace = ee.Backtrace()
		return be
	}
	if tooMany {
		return &BodyError{
			Pos:       pos,
			Msg:       fmt.Sprintf("the step body ran more than %d Starlark execution steps and was stopped (an endless loop?)", maxSteps),
			Backtrace: ee.Backtrace(),
			cause:     ErrTooManySteps,
		}
	}
	msg := ee.Msg
	if n := len(ee.CallStack); n > 0 && ee.CallStack[n-1].Name == "fail" && ee.CallStack[n-1].Pos.Filename() == "<builtin>" {
		msg = strings.TrimPrefix(msg, "fail: ")
		if strings.TrimSpace(msg) == "" || msg == "fail" {
			msg = "fail() was called without a message"
		}
	}
	return &BodyError{Pos: pos, Msg: msg, Backtrace: ee.Backtrace(), Chain: CallChain(ee.CallStack), cause: ee.Unwrap()}
}

// innermostPos is the innermost script position of a call stack.
func innermostPos(stack starlark.CallStack) dag.Pos {
	for i := len(stack) - 1; i >= 0; i-- {
		p := stack[i].Pos
		if p.Filename() != "<builtin>" && p.Line > 0 {
			return dag.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
		}
	}
	return dag.Pos{}
}

// taskOutput turns what a body returned into its output.
func taskOutput(v starlark.Value, body starlark.Callable) (map[string]any, error) {
	var pos dag.Pos
	if fn, ok := body.(*starlark.Function); ok {
		p := fn.Position()
		pos = dag.Pos{File: p.Filename(), Line: int(p.Line), Col: int(p.Col)}
	}
	switch v := v.(type) {
	case starlark.NoneType:
		return nil, nil
	case *starlark.Dict:
		data, err := ToData(v, pos, false)
		if err != nil {
			return nil, &BodyError{Pos: pos, Msg: "task output" + outputPath(err), cause: err}
		}
		out, _ := data.(map[string]any)
		if err := checkOutputSize(out); err != nil {
			return nil, &BodyError{Pos: pos, Msg: err.Error(), cause: err}
		}
		return out, nil
	}
	return nil, &BodyError{Pos: pos, Msg: fmt.Sprintf("task body must return a dict or None, got %s", v.Type())}
}

// outputPath formats a ToData error after "task output": `["k"][0]: msg`
// stays attached, a plain message gets ": ".
func outputPath(err error) string {
	s := err.Error()
	if strings.HasPrefix(s, "[") {
		return s
	}
	return ": " + s
}

// checkOutputSize refuses an output whose JSON is over MaxTaskOutputBytes,
// estimating first so that a huge string is not encoded just to be refused.
func checkOutputSize(out map[string]any) error {
	tooBig := func(n int) error {
		return fmt.Errorf("task output is %s of JSON, more than the limit of %s: write large data to a file and return its path", byteSize(n), byteSize(MaxTaskOutputBytes))
	}
	if n := estimateJSON(out, MaxTaskOutputBytes); n > MaxTaskOutputBytes {
		return fmt.Errorf("task output is more than the limit of %s of JSON: write large data to a file and return its path", byteSize(MaxTaskOutputBytes))
	}
	data, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("task output cannot be stored as JSON: %v", err)
	}
	if len(data) > MaxTaskOutputBytes {
		return tooBig(len(data))
	}
	return nil
}

// estimateJSON is a lower bound of the JSON size of v; it stops counting
// once past limit.
func estimateJSON(v any, limit int) int {
	n := 0
	var walk func(v any)
	walk = func(v any) {
		if n > limit {
			return
		}
		switch v := v.(type) {
		case string:
			n += len(v) + 2
		case map[string]any:
			n += 2
			for k, e := range v {
				n += len(k) + 4
				walk(e)
			}
		case []any:
			n += 2
			for _, e := range v {
				n++
				walk(e)
			}
		default:
			n += 4
		}
	}
	walk(v)
	return n
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
