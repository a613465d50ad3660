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
