package crashtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store/natsstore"
)

// deposedStar is a chain of five task steps, each writing start and end
// lines with its attempt and process to the ledger around a pause, and
// its shell's pid to pid.<step>.<attempt>.<process>. The pause is 0.4 s,
// except for the first attempt of s1 when $DEPOSED_LONG is set: 600 s,
// a body that is still running when its process loses the database.
const deposedStar = `
workflow(name = "deposed")

def work(ctx):
    tag = ctx.step_id + " " + str(ctx.attempt) + " $CRASHTEST_PROC"
    pause = "0.4"
    if ctx.step_id == "s1" and ctx.attempt == 1:
        pause = "${DEPOSED_LONG:-0.4}"
    sh("echo start " + tag + " >> ledger.txt; echo $$ > pid." + tag.replace(" ", ".") + "; sleep " + pause)
    sh("echo end " + tag + " >> ledger.txt")
    return {"v": ctx.inputs.get("x", 0) + 1}

s0 = task("s0", work, inputs = {"x": 0})
s1 = task("s1", work, inputs = {"x": s0.output["v"]})
s2 = task("s2", work, inputs = {"x": s1.output["v"]})
s3 = task("s3", work, inputs = {"x": s2.output["v"]})
s4 = task("s4", work, inputs = {"x": s3.output["v"]})
output(v = s4.output["v"])
`

// TestNATSDeposedOwner: the owner is not killed but paused (SIGSTOP) in
// the middle of step s1; a waiting serve takes the database over; then
// the old owner goes on (SIGCONT). What a user sees of the old owner, a
// `run` or a `serve`: it exits 3, saying that it lost the database to the
// new owner and stops, leaving its runs to it. What it does:
//
//   - "ended": s1's body ended while the owner was paused, so on SIGCONT
//     its commit of s1's end races its heartbeat; whichever learns of the
//     takeover first, the commit is refused by the fence, whole;
//   - "running": s1's body is still running (600 s): the deposed owner
//     stops it (its shell is gone once the owner has exited) instead of
//     letting it run on beside the new owner's attempt.
//
// In both, nothing the old owner wrote after the takeover is in the
// run's history (every step's attempts only go up, in commit order, and
// no attempt ran in both processes), and the new owner runs s1 again
// and finishes the run.
func TestNATSDeposedOwner(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and stops them")
	}
	srv, url := startNATS(t)
	for _, c := range []struct{ owner, s1 string }{
		{"run", "ended"},
		{"serve", "ended"},
		{"serve", "running"},
	} {
		t.Run(c.owner+"/s1_"+c.s1, func(t *testing.T) {
			stream := "deposed_" + c.owner + "_" + c.s1
			r := newRoundFiles(t, 1, nil, map[string]string{"main.star": deposedStar})
			defer r.cleanup()
			t.Setenv("FLOWSCRIPT_STORE", url+"/"+stream)
			long := ""
			if c.s1 == "running" {
				long = "600"
			}
			t.Setenv("DEPOSED_LONG", long)
			db, err := natsstore.Open(natsstore.Options{Server: srv, Stream: stream})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			r.deposed(db, c.owner, c.s1 == "running")
		})
	}
}

// deposed runs one case of TestNATSDeposedOwner.
func (r *round) deposed(db *natsstore.Store, owner string, running bool) {
	t := r.t
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	takeover := "--takeover-after=" + failoverTakeover.String()

	var a *proc
	if owner == "run" {
		a = r.spawn(ctx, "run", "run", "main.star", takeover)
	} else {
		a = r.spawn(ctx, "serve", "serve", takeover)
	}
	if !waitOwner(t, db, a.cmd.Process.Pid, a.done) {
		t.Fatalf("%s ended before owning the database\n%s", owner, r.stderr.String())
	}
	if owner == "serve" {
		r.cli("start", "main.star") // sent to the owner
	}
	// pause the owner once s1's body has started
	for !strings.Contains(r.ledgerText(), "start s1 1 1") {
		select {
		case <-ctx.Done():
			t.Fatalf("s1 did not start\n%s", r.stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	a.signal(syscall.SIGSTOP)
	b := r.spawn(ctx, "serve", "serve", takeover)
	select {
	case <-b.took:
	case <-ctx.Done():
		t.Fatalf("serve did not take over\n%s", r.stderr.String())
	}
	a.signal(syscall.SIGCONT)
	err := r.wait(a)
	if code := a.cmd.ProcessState.ExitCode(); code != 3 || !strings.Contains(r.stderr.String(), "flowscript: lost ownership of the database: taken over by process "+strconv.Itoa(b.cmd.Process.Pid)) ||
		!strings.Contains(r.stderr.String(), "its runs stay unfinished and the new owner continues them") {
		t.Fatalf("the deposed owner ended with %v (exit %d); want exit 3 saying it lost the database to process %d and stops\n%s", err, code, b.cmd.Process.Pid, r.stderr.String())
	}
	if running {
		// the body of s1's first attempt was stopped with its owner
		data, err := os.ReadFile(filepath.Join(r.dir, "pid.s1.1.1"))
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		if alive(pid) {
			t.Errorf("the shell of s1's first attempt (pid %d) still runs after its deposed owner exited", pid)
			syscall.Kill(-pid, syscall.SIGKILL) // its process group
		}
	}
	r.waitRunDone(ctx)
	b.signal(syscall.SIGTERM)
	if err := r.wait(b); err != nil {
		t.Fatalf("serve: %v\n%s", err, r.stderr.String())
	}
	r.checkDeposed()
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...
	rest := string(data[strings.LastIndexByte(string(data), ')')+1:])
	f := strings.Fields(rest)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// checkDeposed checks the run after a deposed owner: it succeeded; its
// history shows no attempt going back (nothing of the old owner landed
// after the takeover) and one success per step, of its last attempt; no
// attempt ran in both processes; the new owner ran s1 again.
func (r *round) checkDeposed() {
	t := r.t
	rec := r.record()
	if rec.Status != "succeeded" || !reflect.DeepEqual(rec.Output, map[string]any{"v": 5.0}) {
		t.Fatalf("run %s ended %s with output %v; want succeeded with v = 5\n%s", rec.ID, rec.Status, rec.Output, r.stderr.String())
	}
	var hist []struct {
		Seq     int    `json:"seq"`
		Type    string `json:"type"`
		Step    string `json:"step"`
		Attempt int    `json:"attempt"`
		Status  string `json:"status"`
	}
	out := r.cli("history", "--json", rec.ID)
	if err := json.Unmarshal(out, &hist); err != nil {
		t.Fatalf("history --json: %v\n%s", err, out)
	}
	attempt := map[string]int{}
	ended := map[string]int{}
	for i, ev := range hist {
		if ev.Seq != i+1 {
			t.Errorf("history event %d has seq %d: %s", i+1, ev.Seq, out)
		}
		if ev.Step == "" {
			continue
		}
		if ev.Attempt < attempt[ev.Step] {
			t.Errorf("step %s: event %d (%s) is of attempt %d after attempt %d was committed: the deposed owner's commit landed\n%s", ev.Step, ev.Seq, ev.Type, ev.Attempt, attempt[ev.Step], out)
		}
		attempt[ev.Step] = ev.Attempt
		if ev.Type == "step_ended" && ev.Status == "succeeded" {
			ended[ev.Step]++
		}
	}
	for _, s := range rec.Steps {
		if s.Status != "succeeded" || ended[s.ID] != 1 || attempt[s.ID] != s.Attempt {
			t.Errorf("step %s: %s attempt %d, %d successes in the history (last attempt %d); want one success of its last attempt", s.ID, s.Status, s.Attempt, ended[s.ID], attempt[s.ID])
		}
	}
	// no attempt ran in both processes; the new owner ran s1 again
	ran := map[string]map[int]bool{} // "step attempt" -> procs
	for _, line := range strings.Split(strings.TrimSpace(r.ledgerText()), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 || f[0] != "start" {
			continue
		}
		k := f[1] + " " + f[2]
		if ran[k] == nil {
			ran[k] = map[int]bool{}
		}
		var p int
		fmt.Sscan(f[3], &p)
		ran[k][p] = true
	}
	for k, procs := range ran {
		if len(procs) > 1 {
			t.Errorf("attempt %s started in both processes: %v", k, procs)
		}
	}
	if !ran["s1 2"][2] {
		t.Errorf("the new owner did not run s1 again (attempt 2); the ledger:\n%s", r.ledgerText())
	}
	if t.Failed() {
		t.Fatalf("stderr of the processes:\n%s", r.stderr.String())
	}
	lost := ""
	for _, line := range strings.Split(r.stderr.String(), "\n") {
		if strings.Contains(line, "lost ownership") {
			lost = line
		}
	}
	t.Logf("the deposed owner was refused and stopped (%q); history: %d events, s1 ran as attempt %d", lost, len(hist), attempt["s1"])
}
