package journal

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
)

// historyJSON is the stored JSON of a history event as encoding/json
// writes it, with its time in TimeFormat: what appendHistory must write.
func historyJSON(h *HistoryEvent) ([]byte, error) {
	type plain HistoryEvent
	return json.Marshal(struct {
		plain
		Time Stamp `json:"time"`
	}{plain(*h), Stamp(h.Time)})
}

var trickyStrings = []string{
	"", "plain", `quote " and \ backslash`, "<b>&amp;</b>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "é ünïcødé 日本", "line\u2028sep\u2029par", "bad \xff utf8 \xc3", "emoji 🙂",
}

var trickyValues = []any{
	nil, true, false, "s", int64(0), int64(-42), int64(math.MaxInt64), 7,
	0.0, math.Copysign(0, -1), 0.1, 1.5, -2.25, 1e-6, 1e-7, 9.99e-7, 1e20, 1e21, 1.5e300, -3e-300, 123456789.0,
	[]any{}, []any(nil), []any{1.0, "x", nil, []any{true}},
	map[string]any{}, map[string]any(nil), map[string]any{"b": 1.0, "a": map[string]any{"<": ">"}, "": nil},
	json.Number("12.5"), []string{"x", "y"}, map[string]string{"k": "v"},
}

// The hand-written appenders write exactly what encoding/json writes for
// the records' MarshalJSON.
func TestAppendersMatchEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 120, time.FixedZone("x", 3600))
	later := at.Add(time.Hour)
	check := func(what string, got []byte, err error, want []byte, werr error) {
		t.Helper()
		if (err != nil) != (werr != nil) {
			t.Fatalf("%s: error %v, encoding/json's %v", what, err, werr)
		}
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
		}
	}
	for i, s := range trickyStrings {
		for j, v := range trickyValues {
			msg := s
			step := StepRecord{ID: s, Kind: "task", Status: core.StepFailed, Attempt: i, Inputs: v, Output: map[string]any{s: v}, Error: &msg, StartedAt: &at}
			if j%2 == 0 {
				step.ChildRunID, step.EndedAt, step.RetryAt, step.EndError = &msg, &later, &at, &msg
				step.RetriesUsed, step.EngineStops, step.Epoch, step.ChildWorkflow, step.ChildVersion, step.ChildHash = 1, 2, 3, s, 4, "h"
				// a planner's plan (raw JSON: compacted, HTML escaped) and a
				// for_each step's keep_succeeded
				if plan, err := json.Marshal(map[string]any{"steps": []any{s, v}}); err == nil {
					step.Plan = append(json.RawMessage(" "), plan...)
				}
				step.KeepSucceeded = true
			}
			want, werr := step.MarshalJSON()
			got, err := appendStep(nil, &step)
			check("step", got, err, want, werr)

			run := RunRecord{ID: "01m8", Workflow: s, Version: j, Status: core.RunRunning, Params: map[string]any{"p": v, s: s}, Output: v, RootRunID: "01m8", CreatedAt: at, Lineage: []string{s}}
			if j%2 == 1 {
				run.Error, run.ParentRunID, run.ParentStepID, run.IdempotencyKey = &msg, &msg, &msg, &msg
				run.StartedAt, run.EndedAt, run.RerunAt = &at, &later, &later
				run.Depth, run.Priority, run.Detached, run.MaxDepth, run.Children, run.Epoch = 2, -3, true, 5, 6, 7
				run.MaskSecrets, run.Hash, run.Workspace, run.CancelRequested, run.TimedOut = []string{s}, "h", "/w", true, true
				run.Params, run.Lineage = nil, nil
			}
			want, werr = run.MarshalJSON()
			got, err = appendRun(nil, &run)
			check("run", got, err, want, werr)
		}
		h := HistoryEvent{Seq: uint64(i), Type: core.RecStepEnded, Time: at, Step: s, Attempt: i, Status: s, Error: s, Child: s, Detail: s}
		want, werr := historyJSON(&h)
		check("history", appendHistory(nil, &h), nil, want, werr)
		h = HistoryEvent{Seq: 1, Type: core.RecRunStarted, Time: at}
		want, werr = historyJSON(&h)
		check("history", appendHistory(nil, &h), nil, want, werr)
	}
	// values encoding/json refuses are refused
	for _, v := range []any{math.NaN(), math.Inf(1), map[string]any{"x": math.Inf(-1)}} {
		if _, err := appendValue(nil, v); err == nil {
			t.Errorf("%v was encoded", v)
		}
	}
}

// The step records this package writes are read back on the fast path,
// to what encoding/json reads.
func TestStepDecoderReadsWhatAppendStepWrites(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 120, time.UTC)
	slowPath := 0
	for i, s := range trickyStrings {
		for _, v := range trickyValues {
			msg := s
			rec := StepRecord{ID: s, Kind: "task", Status: core.StepFailed, Attempt: i, Inputs: v, Output: map[string]any{s: v}, Error: &msg, StartedAt: &at, EndedAt: &at, RetryAt: &at, EndError: &msg, Epoch: 1, ChildVersion: 2}
			data, err := appendStep(nil, &rec)
			if err != nil {
				continue
			}
			var fast, slow StepRecord
			if err := decodeStepJSON(data, &fast); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &slow); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%s:\nfast %+v\nslow %+v", data, fast, slow)
			}
			d := decoder{data: data}
			var again StepRecord
			if d.step(&again) != nil {
				slowPath++
				if !bytes.Contains(data, []byte{'\\'}) {
					t.Fatalf("a record without an escape took the slow path: %s", data)
				}
			}
		}
	}
	if slowPath == 0 {
		t.Fatal("no record took the slow path: the corpus lost its escapes")
	}
}
