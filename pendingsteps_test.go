package flowscript_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/flowscript/flowscript"
)

// A run's steps that have not started have no record of their own (its
// creation writes the layout of its steps): while the first step runs,
// the run shows the others pending, in declaration order, exactly as a
// pending record showed them, and they run once their turn comes.
func TestStepsNotStartedShowPending(t *testing.T) {
	eng := openEngine(t, t.TempDir(), flowscript.Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	eng.RegisterHandler("hold", func(ctx context.Context, tc *flowscript.TaskContext) (map[string]any, error) {
		close(entered)
		<-release
		return nil, nil
	})
	ctx := context.Background()
	prog, err := eng.LoadString(ctx, "w.star", `
a = task("a", "hold")
shell("b", "true", after = ["a"])
task("c", lambda ctx: None, after = ["b"])
`)
	if err != nil {
		t.Fatal(err)
	}
	id, err := eng.Start(ctx, prog, flowscript.RunOptions{Workspace: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	rec, err := eng.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Steps) != 3 || rec.Steps[0].ID != "a" || rec.Steps[0].Status != "running" {
		t.Fatalf("steps while a runs: %+v", rec.Steps)
	}
	for i, want := range []string{
		`{"id":"b","kind":"shell","status":"pending","attempt":0,"inputs":null,"output":null,"error":null,"child_run_id":null,"started_at":null,"ended_at":null}`,
		`{"id":"c","kind":"task","status":"pending","attempt":0,"inputs":null,"output":null,"error":null,"child_run_id":null,"started_at":null,"ended_at":null}`,
	} {
		got, err := json.Marshal(rec.Steps[i+1])
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("step %d shows\n%s\nwant\n%s", i+1, got, want)
		}
	}
	close(release)
	rec, err = eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rec.Steps {
		if s.Status != "succeeded" || s.Attempt != 1 {
			t.Fatalf("step %s: %s/%d", s.ID, s.Status, s.Attempt)
		}
	}
}
