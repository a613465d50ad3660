package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
)

// MaxCollectionLen bounds the number of elements a builtin such as list(),
// sorted() or set() may be asked to consume. Starlark's builtins run in Go
// and cannot be interrupted: list(range(1 << 40)) would allocate terabytes
// before any step or memory limit could stop it. The check is made before
// anything is built.
const MaxCollectionLen = 10_000_000

// collectionBuiltins consume an iterable argument in one uninterruptible
// call.
var collectionBuiltins = []string{
	"list", "tuple", "sorted", "reversed", "enumerate", "set", "dict", "zip",
	"min", "max", "any", "all",
}

// SafeUniverse returns replacements for Starlark's universal builtins that
// consume a whole iterable: each refuses an argument of known length over
// MaxCollectionLen with a message naming the limit, then calls the
// original. Put them in the predeclared environment (they shadow the
// universe).
//
// It also holds the builtins the script loader rewrites `*`, `+=` and the
// collection methods' arguments into (see RepeatBuiltin, BoundBuiltin).
func SafeUniverse() starlark.StringDict {
	d := guardBuiltins()
	for _, name := range collectionBuiltins {
		orig, ok := starlark.Universe[name].(*starlark.Builtin)
		if !ok {
			continue
		}
		d[name] = starlark.NewBuiltin(name, func(thread *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
			for _, a := range args {
				if err := checkCollectionLen(orig.Name(), a); err != nil {
					return nil, err
				}
			}
			return orig.CallInternal(thread, args, kwargs)
		})
	}
	return d
}

func checkCollectionLen(fn string, v starlark.Value) error {
	if n := starlark.Len(v); n > MaxCollectionLen {
		return fmt.Errorf("%s: the %s has %d elements, more than the limit of %d that a builtin may consume at once (max_collection_len, fixed): iterate over it in a for loop instead", fn, v.Type(), n, MaxCollectionLen)
	}
	return nil
}
