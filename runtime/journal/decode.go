package journal

// This file: reading step records back without reflection. A run of
// 1,000 steps is read whole when it ends (its record is what Wait
// returns); encoding/json spent most of that time finding fields by
// reflection and parsing each time twice (once to validate). The fast
// path here reads the records this package writes; anything it does not
// expect (a key it does not know, a type it does not expect, an escape
// it does not take, a syntax error) is decoded again by encoding/json,
// whose result and error are the definition (the fuzz target holds the
// two equal).

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/runtime/core"
)

// errSlow sends a record to encoding/json.
type errSlow struct{}

func (errSlow) Error() string { return "journal: not on the fast path" }

// maxFastDepth bounds the nesting the fast path follows.
const maxFastDepth = 200

// decodeStepJSON decodes a step record's JSON into rec.
func decodeStepJSON(data []byte, rec *StepRecord) error {
	return decodeStepJSONIn(data, rec, nil)
}

// decodeStepJSONIn is decodeStepJSON taking the record's times from
// times, when given (the steps of a run read together).
func decodeStepJSONIn(data []byte, rec *StepRecord, times *timeSlab) error {
	d := decoder{data: data, times: times}
	if err := d.step(rec); err == nil {
		return nil
	}
	*rec = StepRecord{}
	return json.Unmarshal(data, rec)
}

type decoder struct {
	data  []byte
	i     int
	times *timeSlab
}

// timeSlab hands out the times of many records decoded together from
// shared arrays: a run's steps hold two or three each, which were as
// many allocations.
type timeSlab struct{ free []time.Time }

func (s *timeSlab) next() *time.Time {
	if len(s.free) == 0 {
		s.free = make([]time.Time, 64)
	}
	t := &s.free[0]
	s.free = s.free[1:]
	return t
}

func (d *decoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte consumes c, after any space.
func (d *decoder) byte(c byte) bool {
	d.space()
	if d.i < len(d.data) && d.data[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *decoder) peek() byte {
	d.space()
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *decoder) literal(word string) bool {
	d.space()
	if len(d.data)-d.i >= len(word) && string(d.data[d.i:d.i+len(word)]) == word {
		d.i += len(word)
		return true
	}
	return false
}

// rawString returns the bytes of a string without its quotes, when it
// holds no escape and is valid UTF-8 with no control character.
func (d *decoder) rawString() ([]byte, error) {
	d.space()
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return nil, errSlow{}
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.data); j++ {
		c := d.data[j]
		switch {
		case c == '"':
			s := d.data[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, errSlow{}
			}
			d.i = j + 1
			return s, nil
		case c == '\\' || c < 0x20:
			return nil, errSlow{}
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, errSlow{}
}

func (d *decoder) string() (string, error) {
	s, err := d.rawString()
	return string(s), err
}

// word is a string that is most often one of known: then known's own,
// which takes no allocation (a step's kind and status).
func (d *decoder) word(known []string) (string, error) {
	s, err := d.rawString()
	if err != nil {
		return "", err
	}
	for _, w := range known {
		if string(s) == w {
			return w, nil
		}
	}
	return string(s), nil
}

var (
	stepKinds    = []string{string(dag.KindTask), string(dag.KindShell), string(dag.KindSubWorkflow), string(dag.KindForEach), string(dag.KindLoop), string(dag.KindPlanner)}
	stepStatuses = []string{string(core.StepPending), string(core.StepRunning), string(core.StepSucceeded), string(core.StepFailed), string(core.StepSkipped), string(core.StepCancelled)}
)

func (d *decoder) optString() (*string, error) {
	if d.literal("null") {
		return nil, nil
	}
	s, err := d.string()
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// number returns the bytes of a JSON number.
func (d *decoder) number() ([]byte, error) {
	d.space()
	start, j := d.i, d.i
	digits := func() bool {
		k := j
		for j < len(d.data) && d.data[j] >= '0' && d.data[j] <= '9' {
			j++
		}
		return j > k
	}
	if j < len(d.data) && d.data[j] == '-' {
		j++
	}
	switch {
	case j < len(d.data) && d.data[j] == '0':
		j++
	case !digits():
		return nil, errSlow{}
	}
	if j < len(d.data) && d.data[j] == '.' {
		j++
		if !digits() {
			return nil, errSlow{}
		}
	}
	if j < len(d.data) && (d.data[j] == 'e' || d.data[j] == 'E') {
		j++
		if j < len(d.data) && (d.data[j] == '+' || d.data[j] == '-') {
			j++
		}
		if !digits() {
			return nil, errSlow{}
		}
	}
	d.i = j
	return d.data[start:j], nil
}

func (d *decoder) int() (int, error) {
	n, err := d.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(string(n), 10, strconv.IntSize)
	if err != nil {
		return 0, errSlow{}
	}
	return int(v), nil
}

func (d *decoder) optTime() (*time.Time, error) {
	if d.literal("null") {
		return nil, nil
	}
	s, err := d.rawString()
	if err != nil {
		return nil, err
	}
	// with its quotes, as encoding/json hands it to the time
	var t *time.Time
	if d.times != nil {
		t = d.times.next()
	} else {
		t = new(time.Time)
	}
	if err := t.UnmarshalJSON(d.data[d.i-len(s)-2 : d.i]); err != nil {
		return nil, errSlow{}
	}
	return t, nil
}

// value decodes any JSON value as encoding/json decodes it into an any.
func (d *decoder) value(depth int) (any, error) {
	if depth > maxFastDepth {
		return nil, errSlow{}
	}
	switch d.peek() {
	case '"':
		return d.string()
	case '{':
		d.i++
		m := map[string]any{}
		if d.byte('}') {
			return m, nil
		}
		for {
			k, err := d.string()
			if err != nil {
				return nil, err
			}
			if !d.byte(':') {
				return nil, errSlow{}
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			if d.byte('}') {
				return m, nil
			}
			if !d.byte(',') {
				return nil, errSlow{}
			}
		}
	case '[':
		d.i++
		list := []any{}
		if d.byte(']') {
			return list, nil
		}
		for {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
			if d.byte(']') {
				return list, nil
			}
			if !d.byte(',') {
				return nil, errSlow{}
			}
		}
	case 't':
		if d.literal("true") {
			return true, nil
		}
	case 'f':
		if d.literal("false") {
			return false, nil
		}
	case 'n':
		if d.literal("null") {
			return nil, nil
		}
	default:
		n, err := d.number()
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil {
			return nil, errSlow{}
		}
		return f, nil
	}
	return nil, errSlow{}
}

// step decodes a step record, or fails with errSlow.
func (d *decoder) step(rec *StepRecord) error {
	if !d.byte('{') {
		return errSlow{}
	}
	if d.byte('}') {
		return d.end()
	}
	for {
		key, err := d.rawString()
		if err != nil {
			return err
		}
		if !d.byte(':') {
			return errSlow{}
		}
		if err := d.stepField(string(key), rec); err != nil {
			return err
		}
		if d.byte('}') {
			return d.end()
		}
		if !d.byte(',') {
			return errSlow{}
		}
	}
}

// end accepts only space after the record.
func (d *decoder) end() error {
	d.space()
	if d.i != len(d.data) {
		return errSlow{}
	}
	return nil
}

func (d *decoder) stepField(key string, rec *StepRecord) error {
	var err error
	switch key {
	case "id":
		rec.ID, err = d.string()
	case "kind":
		rec.Kind, err = d.word(stepKinds)
	case "status":
		var s string
		s, err = d.word(stepStatuses)
		rec.Status = core.StepStatus(s)
	case "attempt":
		rec.Attempt, err = d.int()
	case "inputs":
		rec.Inputs, err = d.value(0)
	case "output":
		rec.Output, err = d.value(0)
	case "error":
		rec.Error, err = d.optString()
	case "child_run_id":
		rec.ChildRunID, err = d.optString()
	case "started_at":
		rec.StartedAt, err = d.optTime()
	case "ended_at":
		rec.EndedAt, err = d.optTime()
	case "retry_at":
		rec.RetryAt, err = d.optTime()
	case "retries_used":
		rec.RetriesUsed, err = d.int()
	case "engine_stops":
		rec.EngineStops, err = d.int()
	case "epoch":
		rec.Epoch, err = d.int()
	case "child_workflow":
		rec.ChildWorkflow, err = d.string()
	case "child_version":
		rec.ChildVersion, err = d.int()
	case "child_hash":
		rec.ChildHash, err = d.string()
	case "end_error":
		rec.EndError, err = d.optString()
	default:
		return errSlow{}
	}
	return err
}

// skipString consumes a string, escapes and all.
func (d *decoder) skipString() error {
	d.space()
	if d.i >= len(d.data) || d.data[d.i] != '"' {
		return errSlow{}
	}
	for j := d.i + 1; j < len(d.data); j++ {
		switch c := d.data[j]; {
		case c == '\\':
			// an escape encoding/json accepts
			j++
			if j >= len(d.data) {
				return errSlow{}
			}
			switch d.data[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(d.data) {
					return errSlow{}
				}
				for _, h := range d.data[j+1 : j+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return errSlow{}
					}
				}
				j += 4
			default:
				return errSlow{}
			}
		case c == '"':
			d.i = j + 1
			return nil
		case c < 0x20:
			return errSlow{}
		}
	}
	return errSlow{}
}

// skip consumes any value.
func (d *decoder) skip(depth int) error {
	if depth > maxFastDepth {
		return errSlow{}
	}
	switch d.peek() {
	case '"':
		return d.skipString()
	case '{', '[':
		end := byte('}')
		if d.data[d.i] == '[' {
			end = ']'
		}
		d.i++
		if d.byte(end) {
			return nil
		}
		for {
			if end == '}' {
				if err := d.skipString(); err != nil {
					return err
				}
				if !d.byte(':') {
					return errSlow{}
				}
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
			if d.byte(end) {
				return nil
			}
			if !d.byte(',') {
				return errSlow{}
			}
		}
	case 't':
		if d.literal("true") {
			return nil
		}
	case 'f':
		if d.literal("false") {
			return nil
		}
	case 'n':
		if d.literal("null") {
			return nil
		}
	default:
		_, err := d.number()
		return err
	}
	return errSlow{}
}

// runProgress reads the status and epoch of a stored run record, what
// its forward-only check compares, without decoding the rest.
func runProgress(data []byte) (core.RunStatus, int, error) {
	d := decoder{data: data}
	status, epoch, err := d.runProgress()
	if err == nil {
		return status, epoch, nil
	}
	var prev struct {
		Status core.RunStatus `json:"status"`
		Epoch  int            `json:"epoch"`
	}
	err = json.Unmarshal(data, &prev)
	return prev.Status, prev.Epoch, err
}

func (d *decoder) runProgress() (status core.RunStatus, epoch int, err error) {
	if !d.byte('{') {
		return "", 0, errSlow{}
	}
	if d.byte('}') {
		return "", 0, d.end()
	}
	for {
		key, err := d.rawString()
		if err != nil {
			return "", 0, err
		}
		if !d.byte(':') {
			return "", 0, errSlow{}
		}
		switch k := string(key); {
		case k == "status":
			var s string
			s, err = d.string()
			status = core.RunStatus(s)
		case k == "epoch":
			epoch, err = d.int()
		case strings.EqualFold(k, "status") || strings.EqualFold(k, "epoch"):
			// encoding/json matches keys regardless of case
			return "", 0, errSlow{}
		default:
			err = d.skip(0)
		}
		if err != nil {
			return "", 0, err
		}
		if d.byte('}') {
			return status, epoch, d.end()
		}
		if !d.byte(',') {
			return "", 0, errSlow{}
		}
	}
}
