package lang

import (
	"errors"

	"go.starlark.net/resolve"

	"github.com/flowscript/flowscript/dag"
)

func asResolveErrors(err error) (dag.ErrorList, bool) {
	var rl resolve.ErrorList
	if !errors.As(err, &rl) {
		return nil, false
	}
	out := make(dag.ErrorList, 0, len(rl))
	for _, e := range rl {
		out = append(out, &dag.Error{Pos: position(e.Pos), Msg: e.Msg})
	}
	return out, true
}
