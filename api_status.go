package flowscript

import "context"

// Status returns the status of a run (an id or a unique prefix). Unlike
// Get it reads the run's own record only, not the children its for_each
// and loop steps show as iterations: what it costs does not grow with the
// run's fan-out, for a caller that polls (logs --follow).
func (e *Engine) Status(ctx context.Context, id string) (RunStatus, error) {
	rec, err := e.declared(ctx, id)
	if err != nil {
		return "", err
	}
	return rec.Status, nil
}

// declared is Get without the iterations of for_each and loop steps.
func (e *Engine) declared(ctx context.Context, id string) (*RunRecord, error) {
	rec, err := e.rt.GetDeclared(ctx, id)
	return runOf(rec), err
}
