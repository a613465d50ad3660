package core_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/runtime/core"
)

// printView prints, for a transcript's "view STEP[#ATTEMPT]" or "drive
// STEP[#ATTEMPT]", the view Running or Drive gives of the attempt (the
// step's current one when no attempt is named), one fact a line; for
// "current STEP", Current's; for "run-view", RunView's. A view
// changes nothing, so what follows it in the transcript shows the state
// as it was.
func printView(t *testing.T, m *core.Machine, word, rest string) string {
	t.Helper()
	switch word {
	case "run-view":
		v := m.RunView()
		s := "  run-view " + string(v.Status) + " started " + rel(v.StartedAt)
		if !v.RerunAt.IsZero() {
			s += " rerun " + rel(v.RerunAt)
		}
		s += " timeout-from " + rel(v.TimeoutFrom())
		if v.CancelRequested {
			s += " cancel-requested"
		}
		return s + "\n"
	case "current":
		a, ok := m.Current(strings.TrimSpace(rest))
		if !ok {
			return "  current " + rest + " no such step\n"
		}
		s := "  current " + a.Step + "#" + itoa(a.Attempt) + " " + string(a.Status)
		if a.ChildRunID != "" {
			s += " child=" + a.ChildRunID
		}
		return s + "\n"
	}
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

// rel is t as an offset from the transcript's start, "-" for no time.
func rel(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return "+" + t.Sub(t0).String()
}
