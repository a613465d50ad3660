package flowscript_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowscript/flowscript"
)

// §7 Running: a task or shell step that was running when the process
// stopped starts again as attempt + 1 on resume, which does not use up one
// of its retries.
func TestSpecResumeDoesNotUseARetry(t *testing.T) {
	dbDir := t.TempDir()
	ws := t.TempDir()
	eng, err := flowscript.Open(dbDir, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prog, err := eng.LoadString(ctx, "main.star", `
shell("s", """echo x >> tries; n=$(wc -l < tries)
if [ $n -eq 1 ]; then sleep 30; fi
if [ $n -eq 2 ]; then exit 1; fi
exit 0""", retries = 1, retry_delay = "10ms")
`)
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		data, _ := os.ReadFile(filepath.Join(ws, "tries"))
		return strings.Count(string(data), "x") == 1
	})
	eng.Close()
	eng2 := openEngine(t, dbDir, flowscript.Options{})
	if _, err := eng2.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := eng2.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	s := stepByID(t, rec, "s")
	if rec.Status != "succeeded" || s.Attempt != 3 {
		t.Fatalf("run %s, s attempt %d %s %q: the restart used up the retry", rec.Status, s.Attempt, s.Status, deref(s.Error))
	}
	if s.Inputs != nil {
		t.Logf("inputs %#v", s.Inputs)
	}
}
