package flowscript

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime"
)

// A record shown through the API writes its times as the stored record
// does (the journal's stamp): UTC, nine digits of nanoseconds, trailing
// zeros kept, from any zone.
func TestRecordTimesAreTheStoredOnes(t *testing.T) {
	zone := time.FixedZone("x", -5*3600)
	created := time.Date(2026, 12, 3, 9, 4, 5, 120000000, zone)
	started, ended := created.Add(time.Nanosecond), created.Add(time.Second)
	rerun := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	rec := &runtime.RunRecord{ID: "r", Status: "succeeded", CreatedAt: created, StartedAt: &started, EndedAt: &ended, RerunAt: &rerun,
		Steps: []runtime.StepRecord{{ID: "s", Status: "failed", StartedAt: &started, EndedAt: &ended, RetryAt: &rerun}}}
	stored, err := rec.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	step, err := rec.Steps[0].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	shown, err := json.Marshal(runOf(rec))
	if err != nil {
		t.Fatal(err)
	}
	var want, wantStep, got map[string]any
	for _, d := range []struct {
		data []byte
		to   *map[string]any
	}{{stored, &want}, {step, &wantStep}, {shown, &got}} {
		if err := json.Unmarshal(d.data, d.to); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"created_at", "started_at", "ended_at", "rerun_at"} {
		if got[k] != want[k] || got[k] == nil {
			t.Errorf("%s: shown %v, stored %v", k, got[k], want[k])
		}
	}
	gotStep := got["steps"].([]any)[0].(map[string]any)
	for _, k := range []string{"started_at", "ended_at", "retry_at"} {
		if gotStep[k] != wantStep[k] || gotStep[k] == nil {
			t.Errorf("step %s: shown %v, stored %v", k, gotStep[k], wantStep[k])
		}
	}
	if got["created_at"] != "2026-12-03T14:04:05.120000000Z" {
		t.Errorf("created_at %v", got["created_at"])
	}
}

func TestTreeNodeWalkIsTreeOrderAndStops(t *testing.T) {
	leaf := func(id string, c ...*TreeNode) *TreeNode { return &TreeNode{Run: RunRecord{ID: id}, Children: c} }
	root := leaf("a", leaf("b", leaf("c")), leaf("d"))
	var got []string
	if err := root.Walk(func(n *TreeNode, depth int) error {
		got = append(got, fmt.Sprintf("%s%d", n.Run.ID, depth))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "a0 b1 c2 d1" {
		t.Errorf("walk order = %v, want a0 b1 c2 d1", got)
	}
	stop := errors.New("stop")
	got = nil
	err := root.Walk(func(n *TreeNode, _ int) error {
		got = append(got, n.Run.ID)
		if n.Run.ID == "c" {
			return stop
		}
		return nil
	})
	if err != stop || strings.Join(got, "") != "abc" {
		t.Errorf("walk stopped with %v after %v, want stop after a b c", err, got)
	}
}
