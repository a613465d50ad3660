package flowscript_test

import (
	"context"
	"testing"
	"time"

	"github.com/flowscript/flowscript"
)

// specRun loads src as name, runs it in workspace ws (a temp dir if ""),
// and waits for it.
func specRun(t *testing.T, eng *flowscript.Engine, src string, ws string, opts flowscript.RunOptions) *flowscript.RunRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	prog, err := eng.LoadString(ctx, "main.star", src)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if ws == "" {
		ws = t.TempDir()
	}
	opts.Workspace = ws
	rec, err := eng.Run(ctx, prog, opts)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rec
}

func specEngine(t *testing.T, opts flowscript.Options) *flowscript.Engine {
	t.Helper()
	return openEngine(t, t.TempDir(), opts)
}

func specStatuses(rec *flowscript.RunRecord) map[string]string {
	m := map[string]string{}
	for _, s := range rec.Steps {
		m[s.ID] = string(s.Status)
	}
	return m
}

func runtimeRerunOptions() flowscript.RerunOptions { return flowscript.RerunOptions{} }
