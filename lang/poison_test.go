package lang_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/lang"
)

// A collection too large to build at declaration (once a Go out-of-memory
// crash with a stack dump, or 2.5 GB past the memory guard for set())
// is a one-line file:line:col error.
func TestDeclarationCollectionLimit(t *testing.T) {
	for _, expr := range []string{"list(range(1 << 40))", "set(range(1 << 40))", "tuple(range(1 << 40))", "dict(zip(range(1 << 40), range(1 << 40)))"} {
		src := "workflow(name = \"w\")\nx = " + expr + "\n"
		ws := lang.NewWorkspaceFiles(map[string][]byte{"main.star": []byte(src)}, lang.Options{})
		_, err := ws.Load(context.Background(), "main.star")
		if err == nil {
			t.Fatalf("%s: loaded", expr)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "main.star:2:") || strings.Contains(msg, "\n") || !strings.Contains(msg, "limit of 10000000") {
			t.Errorf("%s: got %q, want one line at main.star:2 naming the limit", expr, msg)
		}
	}
}

// retries has a cap: retries = 1 << 40 would keep a failing step going
// for ever.
func TestRetriesCapped(t *testing.T) {
	src := "workflow(name = \"w\")\nshell(\"a\", \"false\", retries = 1 << 40)\n"
	ws := lang.NewWorkspaceFiles(map[string][]byte{"main.star": []byte(src)}, lang.Options{})
	prog, err := ws.Load(context.Background(), "main.star")
	if err == nil {
		err = prog.Errors.Err()
	}
	if err == nil || !strings.Contains(err.Error(), "main.star:2:") || !strings.Contains(err.Error(), "more than the limit of 100") {
		t.Fatalf("got %v, want the retries limit at main.star:2", err)
	}
}
