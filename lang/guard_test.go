package lang

import (
	"strings"
	"testing"

	"go.starlark.net/starlark"

	"github.com/flowscript/flowscript/builtins"
)

// The rewriting of `*`, `+=`, `*=` and the collection methods keeps what
// every one of them computes: each program gives the same globals run
// plainly and guarded.
func TestGuardKeepsSemantics(t *testing.T) {
	src := `
a = 3 * [1]
b = 2 * 3
c = "ab" * 3
d = [1]
d += [2]
d += (3,)
d *= 2
e = 2.5 * 2
f = (1, 2) * 2
g = []
g.extend((5, 6))
g.extend(range(3))
h = {}
h.update({"a": 1}, b = 2)
h.update([("c", 3)])
i = 1 if 2 * 2 == 4 else 0
j = [x * 2 for x in range(4) if x * 1 > 0]
k = {"k": [0] * 2}
k["k"] *= 2
l = 5
l *= 3
l += 1
def m(n, factor = 2 * 2):
    t = [n] * factor
    t += [n * n]
    return t
n = m(3)
o = (lambda x, y = 3 * 3: x * y)(2)
p = "x" * 0 + "y" * -1
q = set([1, 2]).union([2, 3], (4,))
r = b"ab" * 2
s = [1, 2][::1] * 2
u = -2 * -3
v = 10 // 3 * 3
w = "%s" % ([1] * 2)
`
	plain, err := starlark.ExecFileOptions(FileOptions, &starlark.Thread{}, "p.star", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	guarded, err := ExecFile(&starlark.Thread{}, "g.star", []byte(src), builtins.SafeUniverse())
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range plain {
		got, ok := guarded[name]
		if !ok {
			t.Errorf("%s: missing", name)
			continue
		}
		if got.String() != want.String() {
			t.Errorf("%s = %s guarded, %s plainly", name, got, want)
		}
	}
}

// Errors of the operators are theirs, at the operator's position.
func TestGuardErrors(t *testing.T) {
	for src, want := range map[string]string{
		`x = "a" * "b"`:                    `g.star:1:9: unknown binary op: string * string`,
		`x = [0] * (1 << 29)`:              `g.star:1:9: *: repeating a list of 1 element 536870912 times makes more than the limit of 10000000`,
		"x = []\nx.extend(range(1 << 40))": `g.star:2:10: extend: the range has 1099511627776 elements, more than the limit of 10000000`,
		"x = []\nx += range(1 << 40)":      `g.star:2:3: +=: the range has 1099511627776 elements`,
		"x = [1, 2]\nx *= 10000000":        `g.star:2:3: *: repeating a list of 2 elements 10000000 times`,
		`x = set().union(range(1 << 40))`:  `g.star:1:17: union: the range has`,
		`x = "ab" * (1 << 29)`:             `g.star:1:10: *: repeating a string of 2 elements`,
	} {
		_, err := ExecFile(&starlark.Thread{}, "g.star", []byte(src), builtins.SafeUniverse())
		msg := ""
		if ee, ok := err.(*starlark.EvalError); ok {
			// the innermost script frame: the builtin's own is last
			fr := ee.CallStack
			msg = fr[len(fr)-2].Pos.String() + ": " + ee.Msg
		} else if err != nil {
			msg = err.Error()
		}
		if !strings.HasPrefix(msg, want) {
			t.Errorf("%q: got %q, want %q…", src, msg, want)
		}
	}
}
