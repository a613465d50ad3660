package main

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// scriptCmds are the commands the scripts in testdata/script use besides
// testscript's own and flowscript.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"timesnano": checkTimesNano,
	"idsbytime": checkIDsByTime,
	"waitfor":   waitFor,
}

// waitfor PATH [REGEXP]: waits (up to a minute) until PATH exists, and,
// with REGEXP, until its content matches it. For files that background
// commands write: a socket, a marker a step touches, a growing log.
func waitFor(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waitfor PATH [REGEXP]")
	}
	path := ts.MkAbs(args[0])
	var re *regexp.Regexp
	if len(args) == 2 {
		re = regexp.MustCompile(args[1])
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			if re == nil {
				return
			}
			if data, err := os.ReadFile(path); err == nil && re.Match(data) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if re != nil {
		data, _ := os.ReadFile(path)
		ts.Fatalf("%s: no match for %q within a minute; it holds:\n%s", args[0], args[1], data)
	}
	ts.Fatalf("%s did not appear within a minute", args[0])
}

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$`)
var nanoRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`)

// timesnano FILE...: every RFC 3339 time string anywhere in the JSON
// documents must be UTC with exactly nine fractional digits.
func checkTimesNano(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("timesnano does not support !")
	}
	var bad []string
	total := 0
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case string:
			if timeRE.MatchString(x) {
				total++
				if !nanoRE.MatchString(x) {
					bad = append(bad, x)
				}
			}
		}
	}
	for _, f := range args {
		var v any
		if err := json.Unmarshal([]byte(ts.ReadFile(f)), &v); err != nil {
			ts.Fatalf("%s: not one JSON document: %v", f, err)
		}
		walk(v)
	}
	if total == 0 {
		ts.Fatalf("no times found")
	}
	if len(bad) > 0 {
		ts.Fatalf("%d of %d times lack nanoseconds (not 9 fractional digits), e.g. %q", len(bad), total, bad[0])
	}
}

// idsbytime FILE: FILE is `runs --json`; sorting the runs by id must give
// the same order as sorting them by created_at.
func checkIDsByTime(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: idsbytime FILE")
	}
	var runs []struct {
		ID        string `json:"id"`
		CreatedAt string `json:"created_at"`
		Step      any    `json:"parent_step_id"`
	}
	if err := json.Unmarshal([]byte(ts.ReadFile(args[0])), &runs); err != nil {
		ts.Fatalf("not a JSON array of runs: %v", err)
	}
	type r struct {
		id string
		t  time.Time
	}
	var rs []r
	for _, x := range runs {
		tm, err := time.Parse(time.RFC3339Nano, x.CreatedAt)
		if err != nil {
			ts.Fatalf("run %s: created_at %q: %v", x.ID, x.CreatedAt, err)
		}
		rs = append(rs, r{x.ID, tm})
	}
	byID := append([]r(nil), rs...)
	sort.Slice(byID, func(i, j int) bool { return byID[i].id < byID[j].id })
	for i := 1; i < len(byID); i++ {
		if byID[i].t.Before(byID[i-1].t) {
			ts.Fatalf("run ids do not sort by creation time: %s (created %s) sorts before %s (created %s)",
				byID[i-1].id, byID[i-1].t.Format(time.RFC3339Nano), byID[i].id, byID[i].t.Format(time.RFC3339Nano))
		}
	}
	ts.Logf("%d runs, ids in creation order", len(rs))
}
