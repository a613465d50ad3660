package journal

// This file: the JSON of stored records, written by hand. encoding/json
// spends most of a step's encoding time in reflection and in compacting
// the output of the records' MarshalJSON again; these appenders write the
// same bytes (the MarshalJSON methods in records.go stay as the
// definition of that output, and the tests hold the two equal).

import (
	"bytes"
	"encoding/json"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it (HTML characters included).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendTime appends t in TimeFormat, quoted.
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeFormat)
	return append(b, '"')
}

func appendOptTime(b []byte, t *time.Time) []byte {
	if t == nil {
		return append(b, "null"...)
	}
	return appendTime(b, *t)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendFloat writes a float64 as encoding/json does: plain below 1e21
// and from 1e-6, else with an exponent of at least one digit.
func appendFloat(b []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-07 is written e-7
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendValue appends a value of a record (params, inputs, outputs): the
// kinds step bodies and JSON produce are written here, anything else by
// encoding/json.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, v), nil
	case bool:
		return appendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			break // encoding/json's error
		}
		return appendFloat(b, v), nil
	case []any:
		if v == nil {
			return append(b, "null"...), nil
		}
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		return appendMap(b, v)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, data...), nil
}

// appendMap writes a map with its keys in order, as encoding/json does.
func appendMap(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendStep appends a step record's JSON, as StepRecord.MarshalJSON
// writes it: its fields in order, the times last.
func appendStep(b []byte, s *StepRecord) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"kind":`...)
	b = appendString(b, s.Kind)
	b = append(b, `,"status":`...)
	b = appendString(b, string(s.Status))
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(s.Attempt), 10)
	b = append(b, `,"inputs":`...)
	if b, err = appendValue(b, s.Inputs); err != nil {
		return b, err
	}
	b = append(b, `,"output":`...)
	if b, err = appendValue(b, s.Output); err != nil {
		return b, err
	}
	b = append(b, `,"error":`...)
	b = appendOptString(b, s.Error)
	b = append(b, `,"child_run_id":`...)
	b = appendOptString(b, s.ChildRunID)
	if s.RetriesUsed != 0 {
		b = append(b, `,"retries_used":`...)
		b = strconv.AppendInt(b, int64(s.RetriesUsed), 10)
	}
	if s.EngineStops != 0 {
		b = append(b, `,"engine_stops":`...)
		b = strconv.AppendInt(b, int64(s.EngineStops), 10)
	}
	if s.Epoch != 0 {
		b = append(b, `,"epoch":`...)
		b = strconv.AppendInt(b, int64(s.Epoch), 10)
	}
	if s.ChildWorkflow != "" {
		b = append(b, `,"child_workflow":`...)
		b = appendString(b, s.ChildWorkflow)
	}
	if s.ChildVersion != 0 {
		b = append(b, `,"child_version":`...)
		b = strconv.AppendInt(b, int64(s.ChildVersion), 10)
	}
	if s.ChildHash != "" {
		b = append(b, `,"child_hash":`...)
		b = appendString(b, s.ChildHash)
	}
	if s.EndError != nil {
		b = append(b, `,"end_error":`...)
		b = appendString(b, *s.EndError)
	}
	if len(s.Plan) > 0 {
		// as encoding/json writes a json.RawMessage: compacted, HTML
		// characters escaped
		var c bytes.Buffer
		if err := json.Compact(&c, s.Plan); err != nil {
			return b, err
		}
		b = append(b, `,"plan":`...)
		var e bytes.Buffer
		json.HTMLEscape(&e, c.Bytes())
		b = append(b, e.Bytes()...)
	}
	if s.KeepSucceeded {
		b = append(b, `,"keep_succeeded":true`...)
	}
	b = append(b, `,"started_at":`...)
	b = appendOptTime(b, s.StartedAt)
	b = append(b, `,"ended_at":`...)
	b = appendOptTime(b, s.EndedAt)
	if s.RetryAt != nil {
		b = append(b, `,"retry_at":`...)
		b = appendTime(b, *s.RetryAt)
	}
	return append(b, '}'), nil
}

// appendRun appends a run record's JSON without its steps (stored
// apart), as RunRecord.MarshalJSON writes it: its fields in order, the
// times last.
func appendRun(b []byte, r *RunRecord) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	b = append(b, `,"workflow":`...)
	b = appendString(b, r.Workflow)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(r.Version), 10)
	b = append(b, `,"status":`...)
	b = appendString(b, string(r.Status))
	b = append(b, `,"params":`...)
	if b, err = appendMap(b, r.Params); err != nil {
		return b, err
	}
	b = append(b, `,"output":`...)
	if b, err = appendValue(b, r.Output); err != nil {
		return b, err
	}
	b = append(b, `,"error":`...)
	b = appendOptString(b, r.Error)
	b = append(b, `,"parent_run_id":`...)
	b = appendOptString(b, r.ParentRunID)
	b = append(b, `,"parent_step_id":`...)
	b = appendOptString(b, r.ParentStepID)
	b = append(b, `,"root_run_id":`...)
	b = appendString(b, r.RootRunID)
	b = append(b, `,"depth":`...)
	b = strconv.AppendInt(b, int64(r.Depth), 10)
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(r.Priority), 10)
	b = append(b, `,"idempotency_key":`...)
	b = appendOptString(b, r.IdempotencyKey)
	b = append(b, `,"detached":`...)
	b = appendBool(b, r.Detached)
	b = append(b, `,"max_depth":`...)
	b = strconv.AppendInt(b, int64(r.MaxDepth), 10)
	b = append(b, `,"lineage":`...)
	b = appendStrings(b, r.Lineage)
	b = append(b, `,"children":`...)
	b = strconv.AppendInt(b, int64(r.Children), 10)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendInt(b, int64(r.Epoch), 10)
	if len(r.MaskSecrets) > 0 {
		b = append(b, `,"mask_secrets":`...)
		b = appendStrings(b, r.MaskSecrets)
	}
	b = append(b, `,"hash":`...)
	b = appendString(b, r.Hash)
	b = append(b, `,"workspace":`...)
	b = appendString(b, r.Workspace)
	if r.CancelRequested {
		b = append(b, `,"cancel_requested":true`...)
	}
	if r.TimedOut {
		b = append(b, `,"timed_out":true`...)
	}
	b = append(b, `,"created_at":`...)
	b = appendTime(b, r.CreatedAt)
	b = append(b, `,"started_at":`...)
	b = appendOptTime(b, r.StartedAt)
	b = append(b, `,"ended_at":`...)
	b = appendOptTime(b, r.EndedAt)
	if r.RerunAt != nil {
		b = append(b, `,"rerun_at":`...)
		b = appendTime(b, *r.RerunAt)
	}
	return append(b, '}'), nil
}

// appendHistory appends a history event's JSON, its time last.
func appendHistory(b []byte, h *HistoryEvent) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, h.Seq, 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(h.Type))
	if h.Step != "" {
		b = append(b, `,"step":`...)
		b = appendString(b, h.Step)
	}
	if h.Attempt != 0 {
		b = append(b, `,"attempt":`...)
		b = strconv.AppendInt(b, int64(h.Attempt), 10)
	}
	if h.Status != "" {
		b = append(b, `,"status":`...)
		b = appendString(b, h.Status)
	}
	if h.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, h.Error)
	}
	if h.Child != "" {
		b = append(b, `,"child_run_id":`...)
		b = appendString(b, h.Child)
	}
	if h.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendString(b, h.Detail)
	}
	b = append(b, `,"time":`...)
	b = appendTime(b, h.Time)
	return append(b, '}')
}
