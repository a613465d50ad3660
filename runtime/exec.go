package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flowscript/flowscript/builtins"
	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
)

// maxLogBytes caps what one attempt's log keeps in the store.
const maxLogBytes = 4 << 20

func (e *Engine) worker() {
	defer e.workers.Done()
	h := &handoff{} // this worker's, used again for each job
	for {
		j := e.q.pop()
		if j == nil {
			return
		}
		for j != nil {
			*h = handoff{}
			e.execute(j, h)
			// the worker that j took is free: the first step waiting for
			// one gets it, and runs here if nothing else does
			switch {
			case h.given:
				// went to a step that j's end started
			case h.next != nil:
				e.dispatchReady(nil)
			default:
				e.dispatchReady(h)
			}
			j = h.next
		}
	}
}

// execute runs one step attempt and reports its end, filling h. It acts on what the
// decision that started the attempt handed over in j (decide.go
// handOver), and on the attempt's registration, which says whether it is
// still current and whether a later decision stopped it; never on the
// run's machine. Its handoff holds the step attempt that the end started,
// when this worker should run it next, and whether the worker went to a
// step the end dispatched.
func (e *Engine) execute(j *job, h *handoff) {
	ar, def := j.run, j.def
	ar.mu.Lock()
	at := ar.attempts[j.index]
	if at == nil || at.job != j || ar.broken != nil {
		// no longer its step's current attempt (ended without it), or the
		// run stopped
		ar.mu.Unlock()
		return
	}
	if at.stopped {
		// cancelled before a worker took it: it never runs
		delete(ar.attempts, j.index)
		ar.mu.Unlock()
		e.apply(ar, core.StepEnded{Step: def.ID, Attempt: j.attempt, Error: "cancelled", At: e.now()})
		return
	}
	if e.base.Err() != nil {
		// the engine is closing: the attempt stays running in the store,
		// and resume starts it again
		ar.mu.Unlock()
		return
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if def.Timeout > 0 {
		ctx, cancel = context.WithTimeout(e.base, def.Timeout)
	} else {
		ctx, cancel = context.WithCancel(e.base)
	}
	at.cancel = cancel
	ar.mu.Unlock()

	logBuf := e.live.open(ar.rec.ID, j.index, def.ID, j.attempt) // readable while it runs
	defer e.live.close(logBuf)
	log := builtins.NewMasker(logBuf, ar.masks)
	var output any
	var err error
	if j.inputErr != nil {
		err = j.inputErr
	} else {
		output, err = e.runStep(ctx, ar, j, log)
	}
	log.Close()
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
	cancel()

	ar.mu.Lock()
	if ar.attempts[j.index] == at {
		delete(ar.attempts, j.index)
	}
	if ar.logs == nil {
		ar.logs = map[int][]byte{}
	}
	ar.logs[j.index] = logBuf.Bytes()
	ar.mu.Unlock()
	if e.base.Err() != nil {
		// the engine is closing: the attempt was interrupted, not failed;
		// the run stays unfinished and resume starts it again
		return
	}
	ev := core.StepEnded{Step: def.ID, Attempt: j.attempt, Output: output, At: e.now()}
	switch {
	case timedOut:
		// the body's own error only says that it was stopped; a Go
		// handler that ignored its context and returned late overran too
		ev.Error = fmt.Sprintf("timed out after %s", dag.FormatDuration(def.Timeout))
	case err != nil:
		ev.Error = err.Error()
		if ev.Error == "" {
			ev.Error = "failed"
		}
	}
	h.freeing = true
	if def.Kind == dag.KindPlanner {
		e.applyHand(ar, ar.plannedEvent(j.index, ev), nil, nil, h) // dynamic_planner.go
	} else {
		e.applyHand(ar, ev, nil, nil, h)
	}
	h.freeing = false // only this end may give the worker away
}

// runStep does the work of one attempt.
func (e *Engine) runStep(ctx context.Context, ar *activeRun, j *job, log *builtins.Masker) (output any, err error) {
	def, attempt, inputs := j.def, j.attempt, j.inputs
	secretFn := undeclaredSecret // a workflow without secrets needs no closure
	if len(j.prog.Workflow.Secrets) > 0 {
		secretFn = func(name string) (string, error) {
			if !j.prog.Workflow.HasSecret(name) {
				return undeclaredSecret(name)
			}
			v, ok := ar.secrets[name]
			if !ok {
				return "", fmt.Errorf("secret %s is not set: put it in --secrets-file or the environment", name)
			}
			return v, nil
		}
	}
	var in map[string]any
	if len(inputs) > 0 {
		plain, err := withSecrets(inputs, secretFn)
		if err != nil {
			return nil, err
		}
		in, _ = plain.(map[string]any)
	}
	if in == nil && (def.Kind != dag.KindTask || def.Handler != "") {
		in = map[string]any{} // a body's ctx.inputs is {} without a map
	}
	switch def.Kind {
	case dag.KindTask:
		if def.Handler != "" {
			h, ok := e.handler(def.Handler)
			if !ok {
				return nil, fmt.Errorf("no task handler named %q is registered in this engine", def.Handler)
			}
			return callHandler(ctx, h, &TaskContext{
				RunID: ar.rec.ID, StepID: def.ID, Workflow: ar.rec.Workflow, Attempt: attempt,
				Inputs: in, Params: ar.rec.Params, Log: log, Secret: secretFn,
			})
		}
		body, ok := j.prog.Bodies[def.ID]
		if !ok {
			return nil, fmt.Errorf("step %q has no body", def.ID)
		}
		sc := &builtins.StepContext{
			Context: ctx, RunID: ar.rec.ID, StepID: def.ID, Workflow: ar.rec.Workflow,
			Attempt: attempt, Inputs: in, Params: ar.rec.Params, Secret: secretFn,
			Log: log, Dir: ar.rec.Workspace, Masks: ar.masks,
			MaxMemory: e.opts.BodyMaxMemory, HTTPAllow: e.opts.HTTPAllowHosts,
		}
		out, err := builtins.CallBody(sc, body, e.opts.BodyMaxSteps)
		if out == nil {
			return nil, err
		}
		return out, err
	case dag.KindShell:
		return e.runShell(ctx, ar, j, in, secretFn, log)
	case dag.KindPlanner:
		return e.runPlanner(ctx, ar, def, attempt, &builtins.StepContext{
			Context: ctx, RunID: ar.rec.ID, StepID: def.ID, Workflow: ar.rec.Workflow,
			Attempt: attempt, Inputs: in, Params: ar.rec.Params, Secret: secretFn,
			Log: log, Dir: ar.rec.Workspace, Masks: ar.masks,
			MaxMemory: e.opts.BodyMaxMemory, HTTPAllow: e.opts.HTTPAllowHosts,
		}) // dynamic_planner.go
	}
	return nil, fmt.Errorf("%s steps cannot run yet in this version of flowscript", def.Kind)
}

// undeclaredSecret is what a step gets for a secret its workflow does not
// declare.
func undeclaredSecret(name string) (string, error) {
	return "", fmt.Errorf("secret %q is not declared in workflow(secrets=...)", name)
}

func callHandler(ctx context.Context, h Handler, t *TaskContext) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("task handler panicked: %v", r)
		}
	}()
	m, err := h(ctx, t)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, nil
	}
	// outputs are stored as JSON: normalise them now so that what a
	// dependent sees is what a resumed run would see
	data, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("task handler output cannot be stored: %v", err)
	}
	if len(data) > builtins.MaxTaskOutputBytes {
		return nil, fmt.Errorf("task handler output is %.1f MiB of JSON, more than the limit of %d MiB", float64(len(data))/(1<<20), builtins.MaxTaskOutputBytes>>20)
	}
	return dag.DecodeJSON(data)
}

// runShell runs a shell step: /bin/sh -c in the workspace (or dir inside
// it), with env and each input as INPUT_<NAME>.
func (e *Engine) runShell(ctx context.Context, ar *activeRun, j *job, inputs map[string]any, secretFn func(string) (string, error), log *builtins.Masker) (any, error) {
	def := j.def
	env := map[string]string{}
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		env["INPUT_"+strings.ToUpper(strings.ReplaceAll(k, "-", "_"))] = envString(inputs[k])
	}
	if len(def.Env) > 0 {
		plain, err := withSecrets(j.env, secretFn)
		if err != nil {
			return nil, err
		}
		for k, v := range plain.(map[string]any) {
			env[k] = envString(v)
		}
	}
	dir := ar.rec.Workspace
	if def.Dir != "" {
		dir = filepath.Join(dir, filepath.FromSlash(def.Dir))
	}
	streams := builtins.MarkStreams(log, ar.masks)
	res, err := builtins.RunShell(ctx, builtins.ShellRequest{
		Command: def.Command, Env: env, Dir: dir, Stdout: streams.Out, Stderr: streams.Err, Secrets: ar.masks,
	}, 0)
	streams.Close()
	out := map[string]any{"stdout": res.Stdout, "stderr": res.Stderr, "exit_code": int64(res.ExitCode)}
	if err != nil {
		return out, err
	}
	return out, res.ExitError()
}

// envString is how a value reaches a shell: strings raw, others as JSON.
func envString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

// withSecrets replaces secret references by their values (and any other
// reference left unresolved by None).
func withSecrets(v any, secret func(string) (string, error)) (any, error) {
	return dag.MapRefs(v, func(r *dag.Ref) (any, error) {
		if r.Kind != dag.RefSecret {
			return nil, nil
		}
		return secret(r.Name)
	})
}
