package flowscript

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	starjson "go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
)

// DefaultTestTimeout bounds one t.run when TestOptions.Timeout is 0.
const DefaultTestTimeout = time.Minute

// TestOptions tunes RunTests. The zero value is the default.
type TestOptions struct {
	// Update rewrites the golden files instead of comparing with them.
	Update bool
	// Out receives one line per test, and each failure's message and diff.
	Out io.Writer
	// Timeout bounds one t.run (0: DefaultTestTimeout).
	Timeout time.Duration
}

// TestResult is the outcome of one test function.
type TestResult struct {
	File, Name string
	Passed     bool
	// Message says why the test failed, file:line:col first.
	Message string
}

// TestReport is what RunTests found.
type TestReport struct {
	Results        []TestResult
	Passed, Failed int
}

// RunTests runs the test_* functions of workflow test scripts
// (`flowscript test`). A test file is a Starlark file named *_test.star;
// each function test_NAME(t) is called with a tester t:
//
//	r = t.run("pipeline.star", params = {...}, secrets = {...},
//	          stub_tasks = {"pay": {"ok": True}, "notify": t.failure("down")},
//	          stub_workflows = {"deploy": {"url": "https://x"}},
//	          modules = {"shop": struct(price = lambda item: 100)})
//	t.eq(r.status, "succeeded")
//	t.golden(r)
//
// t.run runs the workflow (a path relative to the test file) to its end on
// a fresh in-memory database, with the task steps named in stub_tasks and
// the child workflows named in stub_workflows replaced by fixed outcomes:
// an output dict (or None), or t.failure(message); a stubbed workflow's
// every child run is a stand-in (those of sub_workflow, for_each and loop
// steps, planned ones too); modules stand in for the Starlark modules a
// host program registers. Its result has id, workflow, status, params,
// output, error, parent_step_id, steps (a dict of step id to a struct of
// kind, status, attempt, output, error) and children (the child runs'
// results, in step order and, for a for_each or loop step, by iteration).
//
// t.golden(r, name = None) compares the run tree's records, ids and times
// normalised, with testdata/STEM/TEST[_NAME].golden beside the test file
// (STEM is the file name without _test.star); with Update it writes the
// file. t.eq(got, want, msg = None) and t.true(cond, msg = None) check
// values. A test fails at its first failed check.
//
// The error is for input that is wrong (a file that is missing, not
// named *_test.star, does not parse, or has no tests): errors.Is(err,
// ErrInput) holds.
func RunTests(ctx context.Context, files []string, opts TestOptions) (*TestReport, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTestTimeout
	}
	type suite struct {
		file  string
		tests []*starlark.Function
	}
	var suites []suite
	var problems []string
	for _, file := range files {
		tests, err := loadTestFile(file)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		suites = append(suites, suite{file, tests})
	}
	if len(problems) > 0 {
		return nil, &inputError{strings.Join(problems, "\n")}
	}
	rep := &TestReport{}
	for _, s := range suites {
		for _, fn := range s.tests {
			res := runTest(ctx, s.file, fn, opts)
			rep.Results = append(rep.Results, res)
			if res.Passed {
				rep.Passed++
				fmt.Fprintf(opts.Out, "PASS %s: %s\n", s.file, res.Name)
			} else {
				rep.Failed++
				fmt.Fprintf(opts.Out, "FAIL %s: %s\n", s.file, res.Name)
				for _, line := range strings.Split(strings.TrimRight(res.Message, "\n"), "\n") {
					fmt.Fprintf(opts.Out, "    %s\n", line)
				}
			}
		}
	}
	return rep, nil
}

// loadTestFile evaluates a test file's top level and returns its test
// functions in the order they are defined.
func loadTestFile(file string) ([]*starlark.Function, error) {
	if !strings.HasSuffix(file, "_test.star") {
		return nil, fmt.Errorf("%s: a test file's name ends in _test.star", file)
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot read it: %v", file, unwrapPathError(err))
	}
	thread := &starlark.Thread{Name: file, Print: func(*starlark.Thread, string) {}}
	globals, err := lang.ExecFile(thread, file, src, testPredeclared())
	if err != nil {
		return nil, errors.New(starlarkErrorText(err))
	}
	var tests []*starlark.Function
	for name, v := range globals {
		if fn, ok := v.(*starlark.Function); ok && strings.HasPrefix(name, "test_") {
			tests = append(tests, fn)
		}
	}
	if len(tests) == 0 {
		return nil, fmt.Errorf("%s: no test functions (def test_NAME(t): ...)", file)
	}
	sort.Slice(tests, func(i, j int) bool { return tests[i].Position().Line < tests[j].Position().Line })
	for _, fn := range tests {
		if fn.NumParams() != 1 {
			return nil, fmt.Errorf("%s: %s must take one parameter, t", fn.Position(), fn.Name())
		}
	}
	return tests, nil
}

func testPredeclared() starlark.StringDict {
	g := builtins.SafeUniverse() // what lang.ExecFile's guard calls
	g["json"], g["struct"] = starjson.Module, starlark.NewBuiltin("struct", starlarkstruct.Make)
	return g
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// starlarkErrorText is an evaluation error as file:line:col: message.
func starlarkErrorText(err error) string {
	var evalErr *starlark.EvalError
	if errors.As(err, &evalErr) {
		for i := len(evalErr.CallStack) - 1; i >= 0; i-- {
			if p := evalErr.CallStack[i].Pos; p.Filename() != "<builtin>" && p.Line > 0 {
				return fmt.Sprintf("%s: %s", p, evalErr.Msg)
			}
		}
		return evalErr.Msg
	}
	var synErr syntax.Error
	if errors.As(err, &synErr) {
		return fmt.Sprintf("%s: %s", synErr.Pos, synErr.Msg)
	}
	return err.Error()
}

func runTest(ctx context.Context, file string, fn *starlark.Function, opts TestOptions) TestResult {
	res := TestResult{File: file, Name: fn.Name()}
	t := &tester{ctx: ctx, file: file, test: fn.Name(), opts: opts}
	thread := &starlark.Thread{Name: file + ":" + fn.Name(), Print: func(_ *starlark.Thread, msg string) {
		fmt.Fprintf(opts.Out, "    %s\n", msg)
	}}
	if _, err := starlark.Call(thread, fn, starlark.Tuple{t}, nil); err != nil {
		res.Message = starlarkErrorText(err)
		return res
	}
	res.Passed = true
	return res
}

// tester is the t of a test function.
type tester struct {
	ctx  context.Context
	file string
	test string
	opts TestOptions
}

var testerAttrs = []string{"eq", "failure", "golden", "name", "run", "true"}

func (t *tester) String() string        { return "<tester " + t.test + ">" }
func (t *tester) Type() string          { return "tester" }
func (t *tester) Freeze()               {}
func (t *tester) Truth() starlark.Bool  { return starlark.True }
func (t *tester) Hash() (uint32, error) { return 0, errors.New("unhashable: tester") }
func (t *tester) AttrNames() []string   { return testerAttrs }

func (t *tester) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(t.test), nil
	case "run":
		return starlark.NewBuiltin("run", t.run), nil
	case "golden":
		return starlark.NewBuiltin("golden", t.golden), nil
	case "eq":
		return starlark.NewBuiltin("eq", t.eq), nil
	case "true":
		return starlark.NewBuiltin("true", t.isTrue), nil
	case "failure":
		return starlark.NewBuiltin("failure", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			var msg string
			if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &msg); err != nil {
				return nil, err
			}
			if msg == "" {
				return nil, errors.New("failure: the message is empty")
			}
			return failureValue(msg), nil
		}), nil
	}
	return nil, nil
}

// failureValue is a stub outcome that fails: t.failure("message").
type failureValue string

func (f failureValue) String() string        { return fmt.Sprintf("failure(%q)", string(f)) }
func (f failureValue) Type() string          { return "failure" }
func (f failureValue) Freeze()               {}
func (f failureValue) Truth() starlark.Bool  { return starlark.True }
func (f failureValue) Hash() (uint32, error) { return starlark.String(f).Hash() }

func (t *tester) eq(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var got, want starlark.Value
	var msg string
	if err := starlark.UnpackArgs("eq", args, kwargs, "got", &got, "want", &want, "msg?", &msg); err != nil {
		return nil, err
	}
	same, err := starlark.Equal(got, want)
	if err != nil {
		return nil, err
	}
	if !same {
		return nil, fmt.Errorf("%sgot %s, want %s", prefix(msg), got, want)
	}
	return starlark.None, nil
}

func (t *tester) isTrue(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var cond starlark.Value
	var msg string
	if err := starlark.UnpackArgs("true", args, kwargs, "cond", &cond, "msg?", &msg); err != nil {
		return nil, err
	}
	if !cond.Truth() {
		if msg == "" {
			msg = "the condition is false"
		}
		return nil, errors.New(msg)
	}
	return starlark.None, nil
}

func prefix(msg string) string {
	if msg == "" {
		return ""
	}
	return msg + ": "
}

// run is t.run(script, params=, secrets=, stub_tasks=, stub_workflows=).
func (t *tester) run(thread *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		script                              string
		params, secrets, stubTasks, stubWFs *starlark.Dict
		modules                             *starlark.Dict
	)
	if err := starlark.UnpackArgs("run", args, kwargs, "script", &script, "params?", &params,
		"secrets?", &secrets, "stub_tasks?", &stubTasks, "stub_workflows?", &stubWFs,
		"modules?", &modules); err != nil {
		return nil, err
	}
	stubs := &Stubs{}
	var err error
	if stubs.Tasks, err = stubsOf("stub_tasks", stubTasks); err != nil {
		return nil, err
	}
	if stubs.Workflows, err = stubsOf("stub_workflows", stubWFs); err != nil {
		return nil, err
	}
	prm, err := dictOf("params", params)
	if err != nil {
		return nil, err
	}
	sec := SecretMap{}
	if secrets != nil {
		for _, kv := range secrets.Items() {
			k, ok1 := kv[0].(starlark.String)
			v, ok2 := kv[1].(starlark.String)
			if !ok1 || !ok2 {
				return nil, errors.New("run: secrets must map names to string values")
			}
			sec[string(k)] = string(v)
		}
	}
	path := script
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(t.file), script)
	}
	eng, err := OpenInMemory(Options{SecretSource: sec, Stubs: stubs})
	if err != nil {
		return nil, err
	}
	defer eng.Close()
	if modules != nil {
		// stand-ins for the modules a host program registers
		for _, kv := range modules.Items() {
			name, ok := kv[0].(starlark.String)
			if !ok {
				return nil, fmt.Errorf("run: modules keys must be strings, got %s", kv[0].Type())
			}
			kv[1].Freeze()
			eng.RegisterModule(string(name), kv[1])
		}
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.opts.Timeout)
	defer cancel()
	// positions name files relative to the script's directory, so that
	// goldens do not depend on where the tests are run from
	dir, _ := filepath.Abs(filepath.Dir(path))
	ws, err := lang.OpenWorkspaceAs(dir, "", eng.rt.LangOptions())
	if err != nil {
		return nil, fmt.Errorf("run %s: %v", script, err)
	}
	base := filepath.Base(path)
	prog, err := checked(ctx, ws, func() (*lang.Program, error) { return ws.Load(ctx, base) })
	if err != nil {
		return nil, fmt.Errorf("run %s:\n%v", script, err)
	}
	id, err := eng.Start(ctx, prog, RunOptions{Params: prm})
	if err != nil {
		return nil, fmt.Errorf("run %s: %v", script, err)
	}
	if _, err := eng.WaitTree(ctx, id); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("run %s: did not end within %s", script, t.opts.Timeout)
		}
		return nil, fmt.Errorf("run %s: %v", script, err)
	}
	tree, err := goldenTree(ctx, eng, id)
	if err != nil {
		return nil, err
	}
	return newRunResult(tree, dir)
}

func stubsOf(arg string, d *starlark.Dict) (map[string]Stub, error) {
	out := map[string]Stub{}
	if d == nil {
		return out, nil
	}
	for _, kv := range d.Items() {
		k, ok := kv[0].(starlark.String)
		if !ok {
			return nil, fmt.Errorf("run: %s keys must be strings, got %s", arg, kv[0].Type())
		}
		switch v := kv[1].(type) {
		case failureValue:
			out[string(k)] = Stub{Fail: string(v)}
		case starlark.NoneType:
			out[string(k)] = Stub{}
		case *starlark.Dict:
			m, err := dictOf(arg+"["+string(k)+"]", v)
			if err != nil {
				return nil, err
			}
			out[string(k)] = Stub{Output: m}
		default:
			return nil, fmt.Errorf("run: %s[%q] must be an output dict, None or t.failure(message), got %s", arg, string(k), v.Type())
		}
	}
	return out, nil
}

func dictOf(arg string, d *starlark.Dict) (map[string]any, error) {
	if d == nil {
		return nil, nil
	}
	v, err := builtins.ToData(d, dag.Pos{}, false)
	if err != nil {
		return nil, fmt.Errorf("run: %s: %v", arg, err)
	}
	m, _ := v.(map[string]any)
	return m, nil
}
