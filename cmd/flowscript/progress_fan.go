package main

// This file: run's progress for fan-outs. The children of a for_each or
// loop step (and the runs below them) print no lines of their own: the
// step's line shows a count instead, at most once a second while they
// run (load: 340 of the children ended: 338 succeeded, 2 failed), a line
// for each of the first children that did not succeed, and the counts
// again with the step's end.

import (
	"fmt"
	"strings"
	"time"

	"github.com/flowscript/flowscript"
)

// maxFanFailureLines bounds the lines of failed children per step.
const maxFanFailureLines = 5

// fanProgress counts the children of one dynamic step.
type fanProgress struct {
	started, ended int
	status         map[flowscript.RunStatus]int
	failLines      int
	printed        time.Time
}

func (f *fanProgress) counts() string {
	var parts []string
	for _, st := range []flowscript.RunStatus{flowscript.RunSucceeded, flowscript.RunFailed, flowscript.RunCancelled} {
		if f.status[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", f.status[st], st))
		}
	}
	s := plural(f.ended, "child") + " ended"
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	if running := f.started - f.ended; running > 0 {
		s += fmt.Sprintf("; %d running", running)
	}
	return s
}

// fanEvent takes the events of fan-out children and the runs below them,
// and reports whether it did (then nothing else prints them). It may turn
// them into count lines of the parent's step, via line.
func (p *progress) fanEvent(run *flowscript.RunRecord, ev flowscript.HistoryEvent, line func(parent *flowscript.RunRecord, text string)) bool {
	if p.hidden == nil {
		p.hidden = map[string]string{}
		p.fans = map[string]*fanProgress{}
	}
	key, ok := p.hidden[run.ID]
	if !ok {
		step, _, isFan := iterationOf(run)
		switch {
		case isFan && run.ParentRunID != nil:
			key = *run.ParentRunID + "/" + step
		case run.ParentRunID != nil && p.hidden[*run.ParentRunID] != "":
			key = "" // below a fan-out child: hidden, not counted
			p.hidden[run.ID] = key
			return true
		default:
			return false
		}
		p.hidden[run.ID] = key
	}
	if key == "" {
		if ev.Type == "run_ended" {
			delete(p.hidden, run.ID)
		}
		return true
	}
	f := p.fans[key]
	if f == nil {
		f = &fanProgress{status: map[flowscript.RunStatus]int{}}
		p.fans[key] = f
	}
	parent := &flowscript.RunRecord{ID: *run.ParentRunID, Workflow: run.Workflow, Depth: run.Depth - 1}
	step, _, _ := iterationOf(run)
	switch ev.Type {
	case "run_started":
		f.started++
	case "run_ended":
		f.ended++
		f.status[flowscript.RunStatus(ev.Status)]++
		delete(p.hidden, run.ID)
		if ev.Status != string(flowscript.RunSucceeded) && f.failLines < maxFanFailureLines {
			f.failLines++
			text := fmt.Sprintf("  %s %s (child run %s)", *run.ParentStepID, ev.Status, run.ID)
			if ev.Error != "" {
				text += ": " + firstLine(ev.Error)
			}
			line(parent, text)
		}
		if time.Since(f.printed) >= time.Second {
			f.printed = time.Now()
			line(parent, fmt.Sprintf("  %s: %s", step, f.counts()))
		}
	}
	return true
}

// fanEnded is what the end of a dynamic step's line adds: its children's
// counts, once.
func (p *progress) fanEnded(run *flowscript.RunRecord, step string) string {
	f := p.fans[run.ID+"/"+step]
	if f == nil {
		return ""
	}
	delete(p.fans, run.ID+"/"+step)
	return " (" + f.counts() + ")"
}
