package flowscript_test

import (
	"context"
	"testing"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/store/badgerstore"
)

// New opens an engine on a store the caller opened, runs on it, and
// closes it with the engine.
func TestNewOnAStore(t *testing.T) {
	dir := t.TempDir()
	st, err := badgerstore.Open(dir, badgerstore.Options{Durability: badgerstore.Fast})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := flowscript.New(st, flowscript.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := specRun(t, eng, "task(\"a\", lambda ctx: {\"x\": 1})\n", "", flowscript.RunOptions{})
	if rec.Status != "succeeded" {
		t.Fatalf("run %s: %s", rec.Status, deref(rec.Error))
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	// the store is closed with the engine: the directory can be opened
	// again, and holds the run
	eng = openEngine(t, dir, flowscript.Options{})
	got, err := eng.Get(context.Background(), rec.ID)
	if err != nil || got.Status != "succeeded" {
		t.Fatalf("after reopening: %v %v", got, err)
	}
	if _, err := flowscript.New(nil, flowscript.Options{}); err == nil {
		t.Fatal("New(nil) returned no error")
	}
}
