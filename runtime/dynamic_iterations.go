package runtime

// This file: reading a fan-out's children as the iterations a parent's
// record shows (dynamic_records.go). A read of a parent with 10,000
// children reads 10,000 child records; decoding each whole with
// encoding/json (reflection over every field, bookkeeping included) was
// most of that read. Here a child's record is split into its top-level
// fields without building anything, and only the fields an iteration
// shows are decoded, each as encoding/json decodes it. A record the split
// does not expect (a key spelled in another case, a key with an escape,
// a field of an unexpected type) is decoded whole by the journal, whose
// result is the definition; so is a record that is not valid JSON (the
// split checks all of it as it goes), which the journal reports as
// damaged. FuzzChildView holds the two equal.

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowscript/flowscript/runtime/journal"
)

// childView is what an iteration shows of its child run.
type childView struct {
	ID, Workflow, Status string
	Version              int
	Params               map[string]any
	Output               any
	Error, ParentStepID  *string
	StartedAt, EndedAt   *time.Time
}

// viewOf is the view of a record decoded whole.
func viewOf(c *RunRecord) childView {
	return childView{
		ID: c.ID, Workflow: c.Workflow, Status: string(c.Status), Version: c.Version,
		Params: c.Params, Output: c.Output, Error: c.Error, ParentStepID: c.ParentStepID,
		StartedAt: c.StartedAt, EndedAt: c.EndedAt,
	}
}

// readChild reads child run id. want, given the child's parent step id,
// says whether the caller shows it: the fields of the others are not
// decoded (ok false).
func readChild(tx *journal.Tx, id string, want func(parentStep string) bool) (v childView, ok bool, err error) {
	data, err := tx.RunBytes(id)
	if err != nil {
		return v, false, err
	}
	if v, ok, fast := viewChild(data, want); fast {
		return v, ok, nil
	}
	c, err := tx.Run(id)
	if err != nil {
		return v, false, err
	}
	v = viewOf(c)
	return v, want(deref(v.ParentStepID)), nil
}

// viewChild decodes the fields a view shows of a run record's JSON; fast
// is false where only decoding it whole can say what it holds.
func viewChild(data []byte, want func(parentStep string) bool) (v childView, ok, fast bool) {
	f, split := splitRun(data)
	if !split {
		return v, false, false
	}
	return f.view(want)
}

// runFields are the raw JSON values of the fields a view decodes.
type runFields struct {
	id, workflow, status, version, params, output, err, parentStep, started, ended []byte
}

func (f *runFields) slot(key []byte) *[]byte {
	switch string(key) {
	case "id":
		return &f.id
	case "workflow":
		return &f.workflow
	case "status":
		return &f.status
	case "version":
		return &f.version
	case "params":
		return &f.params
	case "output":
		return &f.output
	case "error":
		return &f.err
	case "parent_step_id":
		return &f.parentStep
	case "started_at":
		return &f.started
	case "ended_at":
		return &f.ended
	}
	return nil
}

// passedOver says, of the fields a view does not show, whether
// encoding/json would decode value into the RunRecord field of that key
// without an error (the record is damaged otherwise): for each key of
// RunRecord, a check of the value's type. A key that is no field's is
// passed over as encoding/json passes it over; a key that would name a
// field but for case is not taken (encoding/json folds it into the field).
var passedOver = func() map[string]func(raw []byte) bool {
	checks := map[string]func([]byte) bool{}
	rt := reflect.TypeFor[RunRecord]()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		checks[name] = typeCheck(f.Type)
	}
	return checks
}()

var timeType = reflect.TypeFor[time.Time]()

// typeCheck is whether a valid JSON value decodes into a value of type t
// (nil: not known here).
func typeCheck(t reflect.Type) func([]byte) bool {
	isNull := func(raw []byte) bool { return string(raw) == "null" }
	switch {
	case t == timeType || (t.Kind() == reflect.Pointer && t.Elem() == timeType):
		return func(raw []byte) bool { _, ok := optStamp(raw); return ok }
	case t.Kind() == reflect.Pointer:
		return typeCheck(t.Elem())
	}
	switch t.Kind() {
	case reflect.String:
		return func(raw []byte) bool { return isNull(raw) || raw[0] == '"' }
	case reflect.Bool:
		return func(raw []byte) bool { return isNull(raw) || raw[0] == 't' || raw[0] == 'f' }
	case reflect.Int:
		return func(raw []byte) bool {
			_, err := strconv.ParseInt(string(raw), 10, strconv.IntSize)
			return isNull(raw) || err == nil
		}
	case reflect.Interface:
		return func([]byte) bool { return true }
	case reflect.Map:
		return func(raw []byte) bool { return isNull(raw) || raw[0] == '{' }
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return func(raw []byte) bool { return isNull(raw) || stringList(raw) }
		}
	}
	return nil
}

// stringList is whether a JSON array holds only strings and nulls.
func stringList(raw []byte) bool {
	s := splitter{b: raw}
	if !s.take('[') {
		return false
	}
	if s.take(']') {
		return true
	}
	for {
		start, ok := s.value(0)
		if v := raw[start:s.i]; !ok || (v[0] != '"' && string(v) != "null") {
			return false
		}
		if s.take(']') {
			return true
		}
		if !s.take(',') {
			return false
		}
	}
}

// takes says whether the split takes a key as it stands (see passedOver).
func takes(key string) bool {
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			return false
		}
	}
	for name := range passedOver {
		if name != key && strings.EqualFold(name, key) {
			return false
		}
	}
	return true
}

// view decodes the fields, as encoding/json would into a RunRecord.
// fast is false where it cannot say.
func (f *runFields) view(want func(string) bool) (v childView, ok, fast bool) {
	var err error
	if v.ParentStepID, fast = optText(f.parentStep); !fast {
		return v, false, false
	}
	if !want(deref(v.ParentStepID)) {
		return v, false, true
	}
	texts := []struct {
		raw []byte
		to  *string
	}{{f.id, &v.ID}, {f.workflow, &v.Workflow}, {f.status, &v.Status}}
	for _, t := range texts {
		if t.raw != nil {
			s, fast := optText(t.raw)
			if !fast {
				return v, false, false
			}
			if s != nil {
				*t.to = *s
			}
		}
	}
	if v.Error, fast = optText(f.err); !fast {
		return v, false, false
	}
	if f.version != nil && string(f.version) != "null" {
		if v.Version, err = strconv.Atoi(string(f.version)); err != nil {
			return v, false, false
		}
	}
	if f.params != nil && json.Unmarshal(f.params, &v.Params) != nil {
		return v, false, false
	}
	if f.output != nil && json.Unmarshal(f.output, &v.Output) != nil {
		return v, false, false
	}
	if v.StartedAt, fast = optStamp(f.started); !fast {
		return v, false, false
	}
	if v.EndedAt, fast = optStamp(f.ended); !fast {
		return v, false, false
	}
	return v, true, true
}

// optText is a JSON string or null (or an absent field: nil) as
// encoding/json decodes it into a *string; fast is false for anything
// else, and for strings with escapes.
func optText(raw []byte) (s *string, fast bool) {
	if raw == nil || string(raw) == "null" {
		return nil, true
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c == '\\' || c == '"' {
			return nil, false
		}
	}
	if !utf8.Valid(body) {
		return nil, false
	}
	t := string(body)
	return &t, true
}

// optStamp is a time or null, as encoding/json decodes it into a
// *time.Time.
func optStamp(raw []byte) (*time.Time, bool) {
	if raw == nil || string(raw) == "null" {
		return nil, true
	}
	t := new(time.Time)
	if t.UnmarshalJSON(raw) != nil {
		return nil, false
	}
	return t, true
}

// splitRun finds the top-level fields of a run record's JSON, checking
// all of it as encoding/json's scanner does (a record encoding/json would
// refuse is refused here, and the journal then reports it damaged). ok is
// false for such a record, for one that is not an object, and for one
// with a key the split does not take.
func splitRun(data []byte) (f runFields, ok bool) {
	s := splitter{b: data}
	if !s.take('{') {
		return f, false
	}
	if s.take('}') {
		return f, s.end()
	}
	for {
		key, ok := s.plainString()
		if !ok || !s.take(':') {
			return f, false
		}
		start, ok := s.value(0)
		if !ok {
			return f, false
		}
		raw := data[start:s.i]
		if slot := f.slot(key); slot != nil {
			if *slot != nil {
				return f, false // given twice: encoding/json would merge two params
			}
			*slot = raw
		} else if check, known := passedOver[string(key)]; known && (check == nil || !check(raw)) {
			return f, false
		} else if !known && !takes(string(key)) {
			return f, false
		}
		if s.take('}') {
			return f, s.end()
		}
		if !s.take(',') {
			return f, false
		}
	}
}

// splitter walks JSON already known to be valid.
type splitter struct {
	b []byte
	i int
}

func (s *splitter) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *splitter) take(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// plainString reads a string with no escape.
func (s *splitter) plainString() ([]byte, bool) {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '\\' || c < 0x20:
			return nil, false
		case c == '"':
			str := s.b[s.i+1 : j]
			s.i = j + 1
			return str, true
		}
	}
	return nil, false
}

// end accepts only space after the record.
func (s *splitter) end() bool {
	s.space()
	return s.i == len(s.b)
}

// maxSplitDepth is past where the split leaves a record to encoding/json
// (whose own limit is 10,000).
const maxSplitDepth = 1000

// value passes over one JSON value, checking it as encoding/json's
// scanner does, and returns where it began; ok is false for anything
// that is not a valid value.
func (s *splitter) value(depth int) (start int, ok bool) {
	s.space()
	start = s.i
	if s.i >= len(s.b) || depth > maxSplitDepth {
		return start, false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		return start, s.str()
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		s.i++
		if s.take(closing) {
			return start, true
		}
		for {
			if c == '{' {
				s.space()
				if !s.str() || !s.take(':') {
					return start, false
				}
			}
			if _, ok := s.value(depth + 1); !ok {
				return start, false
			}
			if s.take(closing) {
				return start, true
			}
			if !s.take(',') {
				return start, false
			}
		}
	case c == 't':
		return start, s.word("true")
	case c == 'f':
		return start, s.word("false")
	case c == 'n':
		return start, s.word("null")
	}
	return start, s.num()
}

func (s *splitter) word(w string) bool {
	if len(s.b)-s.i < len(w) || string(s.b[s.i:s.i+len(w)]) != w {
		return false
	}
	s.i += len(w)
	return true
}

// str passes over a string: no control character, only JSON's escapes.
func (s *splitter) str() bool {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(s.b)-s.i <= 4 {
					return false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

// num passes over a number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *splitter) num() bool {
	digits := func() bool {
		from := s.i
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
		}
		return s.i > from
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if !digits() {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !digits() {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !digits() {
			return false
		}
	}
	return true
}
