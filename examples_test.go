package flowscript_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowscript/flowscript"
)

// TestExamples runs the *_test.star files of examples/ as `flowscript
// test` does: every example's workflows run against their goldens.
// FLOWSCRIPT_UPDATE=1 rewrites the goldens.
func TestExamples(t *testing.T) {
	var files []string
	filepath.WalkDir("examples", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, "_test.star") {
			files = append(files, path)
		}
		return err
	})
	if len(files) < 6 {
		t.Fatalf("found %d example test files, want at least 6: %v", len(files), files)
	}
	var out bytes.Buffer
	rep, err := flowscript.RunTests(context.Background(), files, flowscript.TestOptions{Out: &out, Update: updating()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed > 0 || rep.Passed == 0 {
		t.Errorf("%d passed, %d failed:\n%s", rep.Passed, rep.Failed, out.String())
	}
}

// updating reports whether goldens are to be rewritten (FLOWSCRIPT_UPDATE=1).
func updating() bool { return os.Getenv("FLOWSCRIPT_UPDATE") == "1" }
