package journal

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
)

// FuzzRecordDecoders feeds arbitrary bytes to the decoders of every stored
// record (step, run, history event or pack, notice): they must never panic, and
// a step record that decodes must encode and decode to the same record,
// and the hand-written encoders and step decoder must write and read what
// encoding/json writes and reads.
//
//	go test ./runtime -run '^$' -fuzz FuzzRecordDecoders -fuzztime 10m -parallel 1
func FuzzRecordDecoders(f *testing.F) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	msg := "boom"
	step, _ := encodeStep(&StepRecord{ID: "a", Kind: "task", Status: core.StepFailed, Attempt: 2, Error: &msg, StartedAt: &at, Output: map[string]any{"x": []any{1.0, "y"}}, EngineStops: 1})
	f.Add(step)
	run, _ := json.Marshal(&RunRecord{ID: "01m8", Workflow: "w", Status: core.RunRunning, CreatedAt: at, StartedAt: &at})
	f.Add(run)
	f.Add([]byte(`{"id":"x","params":{"status":"failed","epoch":3,"s":"a\"b\u00e9\n"},"output":[1,{"epoch":2}],"status":"running","epoch":1,"x":null,"y":true}`))
	f.Add([]byte(`{"EPOCH":2,"status":"ok"}`))
	ev, _ := json.Marshal(&HistoryEvent{Seq: 3, Type: "step_started", Time: at, Step: "a", Attempt: 1})
	f.Add(ev)
	f.Add([]byte(`[` + string(ev) + `,{"seq":4,"type":"step_ended","step":"a","attempt":1,"status":"succeeded","time":"2026-12-02T10:00:00Z"}]`))
	f.Add([]byte{stepHeaderMagic, 0, 0, 0, 1, 0, 0, 0, 2, 1, '{', '}'})
	f.Add([]byte{})
	full, _ := appendStep(nil, &StepRecord{ID: "s<1>", Kind: "shell", Status: core.StepSucceeded, Attempt: 3, Inputs: map[string]any{"é": []any{-1.5e-9, true, nil, map[string]any{}}}, Output: "x\n\u2028", ChildRunID: &msg, EndedAt: &at, RetryAt: &at, EndError: &msg, Epoch: 2, ChildVersion: 4, ChildWorkflow: "w", ChildHash: "h", RetriesUsed: 1})
	f.Add(full)
	f.Add([]byte(` {"ID":"a", "attempt": 1e2, "inputs": {"a":1,"a":2}, "started_at": "2026-12-02T10:00:00Z"} `))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = stepHeader(data)
		var rec StepRecord
		if err := decodeStep(data, &rec); err == nil {
			again, err := encodeStep(&rec)
			if err != nil {
				t.Fatalf("a decoded step record does not encode: %v", err)
			}
			var back StepRecord
			if err := decodeStep(again, &back); err != nil {
				t.Fatalf("a re-encoded step record does not decode: %v", err)
			}
			if want, _ := rec.MarshalJSON(); !bytes.Equal(again[stepHeaderLen:], want) {
				t.Fatalf("appendStep wrote %s, encoding/json %s", again[stepHeaderLen:], want)
			}
			a, _ := json.Marshal(rec)
			b, _ := json.Marshal(back)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("step record changed through encode/decode:\n%s\n%s", a, b)
			}
		}
		var fast, slow StepRecord
		errFast, errSlow := decodeStepJSON(data, &fast), json.Unmarshal(data, &slow)
		if (errFast == nil) != (errSlow == nil) || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("decodeStepJSON: %+v (%v), encoding/json: %+v (%v)", fast, errFast, slow, errSlow)
		}
		var small struct {
			Status core.RunStatus `json:"status"`
			Epoch  int            `json:"epoch"`
		}
		errSmall := json.Unmarshal(data, &small)
		if status, epoch, err := runProgress(data); (err == nil) != (errSmall == nil) || err == nil && (status != small.Status || epoch != small.Epoch) {
			t.Fatalf("runProgress: %q %d (%v), encoding/json: %q %d (%v)", status, epoch, err, small.Status, small.Epoch, errSmall)
		}
		if run, err := decodeRunRecord(data); err == nil && len(run.Steps) == 0 {
			want, werr := run.MarshalJSON()
			got, err := appendRun(nil, run)
			if (err == nil) != (werr == nil) || err == nil && !bytes.Equal(got, want) {
				t.Fatalf("appendRun wrote %s (%v), encoding/json %s (%v)", got, err, want, werr)
			}
		}
		if h, err := decodeHistoryEvent(data); err == nil {
			want, _ := historyJSON(h)
			if got := appendHistory(nil, h); !bytes.Equal(got, want) {
				t.Fatalf("appendHistory wrote %s, encoding/json %s", got, want)
			}
		}
		// a history key's value: one event, or a pack of them from seq 3
		if evs, err := decodeHistoryValue(3, data); err == nil {
			for i := range evs {
				if evs[i].Seq != 3+uint64(i) && len(evs) > 1 {
					t.Fatalf("pack event %d has seq %d", i, evs[i].Seq)
				}
				want, _ := historyJSON(&evs[i])
				if got := appendHistory(nil, &evs[i]); !bytes.Equal(got, want) {
					t.Fatalf("appendHistory wrote %s, encoding/json %s", got, want)
				}
			}
		}
		var n Notice
		_ = json.Unmarshal(data, &n)
		_, _, _ = splitIndexedKey(data, 4)
		_, _, _ = splitIndexedKey(data, 8)
	})
}
