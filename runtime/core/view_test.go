package core_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/runtime/core"
)

// printView prints, for a transcript's "view STEP[#ATTEMPT]" or "drive
// STEP[#ATTEMPT]", the view Running or Drive gives of the attempt (the
// step's current one when no attempt is named), one fact a line. A view
// changes nothing, so what follows it in the transcript shows the state
// as it was.
func printView(t *testing.T, m *core.Machine, word, rest string) string {
	t.Helper()
	step, n, named := strings.Cut(strings.TrimSpace(rest), "#")
	attempt := 0
	if named {
		var err error
		if attempt, err = strconv.Atoi(n); err != nil {
			t.Fatalf("%s %s: attempt: %v", word, rest, err)
		}
	} else if st := m.StepState(step); st != nil {
		attempt = st.Attempt
	}
	var (
		a  core.AttemptView
		ok bool
		d  core.DriveView
	)
	if word == "drive" {
		d, ok = m.Drive(step, attempt)
		a = d.AttemptView
	} else {
		a, ok = m.Running(step, attempt)
	}
	if !ok {
		return "  " + word + " " + step + "#" + itoa(attempt) + " not running\n"
	}
	s := "  " + word + " " + a.Step + "#" + itoa(a.Attempt) + " running since +" + a.StartedAt.Sub(t0).String()
	if a.ChildRunID != "" {
		s += " child=" + a.ChildRunID
	}
	if a.CancelRequested {
		s += " cancel-requested"
	}
	s += "\n"
	if word == "drive" {
		js := func(v any) string {
			data, err := json.Marshal(v) // map keys sorted
			if err != nil {
				t.Fatalf("%s %s: %v", word, rest, err)
			}
			return string(data)
		}
		s += "    inputs=" + js(d.Inputs) + " items=" + js(d.Items) + " priority=" + js(d.Priority) + "\n"
		if d.Err != nil {
			s += "    error=" + d.Err.Error() + "\n"
		}
	}
	return s
}
