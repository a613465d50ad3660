package builtins

import (
	"fmt"

	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// Operators and methods that build a collection in one uninterruptible
// Go call, which neither the step limit nor the memory guard can stop:
// [0] * (1 << 29) allocates 8 GB at once, and x.extend(range(1 << 40)) or
// x += range(1 << 40) grows a list until the process dies. The script
// loader (lang) rewrites each `*`, each `+=` and the collection methods'
// arguments into calls of these two builtins, which refuse an operation
// that would make or consume more than MaxCollectionLen elements, then do
// what the operator or method would have done. Their names cannot be
// written in a script, so a script cannot rebind them.
const (
	// RepeatBuiltin computes x * y.
	RepeatBuiltin = "$mul"
	// BoundBuiltin returns its first argument, once it is known to hold
	// at most MaxCollectionLen elements; its second names the operation
	// for the message.
	BoundBuiltin = "$bound"
)

// BoundedMethods are the methods whose arguments are consumed whole in one
// call (list.extend, dict.update, the set operations).
var BoundedMethods = map[string]bool{
	"extend": true, "update": true, "union": true, "intersection": true, "difference": true,
	"symmetric_difference": true, "issubset": true, "issuperset": true, "isdisjoint": true,
}

func guardBuiltins() starlark.StringDict {
	return starlark.StringDict{
		RepeatBuiltin: starlark.NewBuiltin(RepeatBuiltin, repeatBuiltin),
		BoundBuiltin:  starlark.NewBuiltin(BoundBuiltin, boundBuiltin),
	}
}

func repeatBuiltin(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("%s: want 2 operands, got %d", RepeatBuiltin, len(args))
	}
	x, y := args[0], args[1]
	if err := checkRepeat(x, y); err != nil {
		return nil, err
	}
	if err := checkRepeat(y, x); err != nil {
		return nil, err
	}
	return starlark.Binary(syntax.STAR, x, y)
}

// checkRepeat refuses seq * n when the result would have more than
// MaxCollectionLen elements (bytes, for strings).
func checkRepeat(seq, n starlark.Value) error {
	count, ok := n.(starlark.Int)
	if !ok {
		return nil
	}
	var l int
	switch s := seq.(type) {
	case *starlark.List:
		l = s.Len()
	case starlark.Tuple:
		l = s.Len()
	case starlark.String:
		l = s.Len()
	case starlark.Bytes:
		l = s.Len()
	default:
		return nil
	}
	if l == 0 || count.Sign() <= 0 {
		return nil
	}
	k, ok := count.Int64()
	if ok && k <= int64(MaxCollectionLen/l) {
		return nil
	}
	elements := "elements"
	if l == 1 {
		elements = "element"
	}
	return fmt.Errorf("*: repeating a %s of %d %s %s times makes more than the limit of %d elements that one operation may build (max_collection_len, fixed): build it in a for loop instead", seq.Type(), l, elements, count, MaxCollectionLen)
}

func boundBuiltin(_ *starlark.Thread, _ *starlark.Builtin, args starlark.Tuple, _ []starlark.Tuple) (starlark.Value, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("%s: want 2 arguments, got %d", BoundBuiltin, len(args))
	}
	op, _ := starlark.AsString(args[1])
	if err := checkCollectionLen(op, args[0]); err != nil {
		return nil, err
	}
	return args[0], nil
}
