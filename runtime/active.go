package runtime

import (
	"context"
)

// IsActive reports whether this engine is running the run now. A run that
// is unfinished in the store but active in no engine was interrupted (its
// process stopped) and waits for a resume.
func (e *Engine) IsActive(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.active[id]
	return ok
}

// ResumeTrees continues the unfinished runs of the trees that the named
// runs (ids or unique prefixes) belong to, and no others. It returns the
// ids it continued; Wait on them.
func (e *Engine) ResumeTrees(ctx context.Context, idsOrPrefixes []string) ([]string, error) {
	roots := map[string]bool{}
	for _, p := range idsOrPrefixes {
		rec, err := e.Get(ctx, p)
		if err != nil {
			return nil, err
		}
		roots[rec.RootRunID] = true
	}
	return e.resumeWhere(ctx, func(id string) (bool, error) {
		rec, err := e.Get(ctx, id)
		if err != nil {
			return false, err
		}
		return roots[rec.RootRunID], nil
	})
}
