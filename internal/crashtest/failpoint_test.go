package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscript/flowscript/internal/failpoint"
)

// A three-level tree: the root runs a shell step, a blocking child (which
// has a blocking child of its own) and a detached child, then a last step
// after the blocking child.
var fpTreeFiles = map[string]string{
	"fp.star": `workflow(name = "fp")
a = shell("a", "echo a >> ledger.txt")
k = sub_workflow("kid", id = "k", after = [a])
d = sub_workflow("det", id = "d", detach = True)
shell("z", "echo z >> ledger.txt", after = [k])
`,
	"kid.star": `workflow(name = "kid")
x = shell("x", "echo x >> ledger.txt")
sub_workflow("grandkid", id = "g", after = [x])
`,
	"grandkid.star": `workflow(name = "grandkid")
shell("y", "echo y >> ledger.txt")
`,
	"det.star": `workflow(name = "det")
shell("w", "echo w >> ledger.txt")
`,
}

// failpointPrefixes are the kinds of commit the engine makes, by the keys
// they write: run records, step states, history appends, child spawns,
// notices to a waiting parent, the active and wait markers.
var failpointPrefixes = []string{"run/", "step/", "hist/", "child/", "notice/", "active/", "wait/"}

// TestFailpointKills kills the engine with SIGKILL just before and just
// after the n-th commit that writes each kind of key, resumes, and checks:
// the root succeeds, every run of the tree exists exactly once (no child
// spawned twice, none lost), no run is left unfinished, and
// `flowscript check` finds the database whole.
func TestFailpointKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills hundreds of processes")
	}
	maxN := 2
	if os.Getenv("FLOWSCRIPT_RELIABILITY_ROUNDS") != "" {
		maxN = 5
	}
	var rounds, killed, notCreated, dupes, lost, reran int
	var recovery time.Duration
	for _, when := range []string{"before-commit:", "after-commit:"} {
		for _, prefix := range failpointPrefixes {
			for n := 1; n <= maxN; n++ {
				point := fmt.Sprintf("%s%s:%d", when, prefix, n)
				r := failpointRound(t, point)
				rounds++
				if r.killed {
					killed++
				}
				if r.notCreated {
					notCreated++
				}
				dupes += r.dupes
				lost += r.lost
				reran += r.reran
				recovery = max(recovery, r.recovery)
			}
		}
	}
	figure("kill -9 at failpoints", "rounds (killed at the point; before the run existed)", "%d (%d; %d)", rounds, killed, notCreated)
	figure("kill -9 at failpoints", "duplicate child runs", "%d", dupes)
	figure("kill -9 at failpoints", "lost runs", "%d", lost)
	figure("kill -9 at failpoints", "shell steps run again after a kill", "%d", reran)
	figure("kill -9 at failpoints", "longest recovery (resume to all ended)", "%s", recovery.Round(time.Millisecond))
	if dupes > 0 || lost > 0 {
		t.Fatalf("%d duplicate and %d lost runs", dupes, lost)
	}
}

type failpointResult struct {
	killed, notCreated bool
	dupes, lost, reran int
	recovery           time.Duration
}

func failpointRound(t *testing.T, point string) failpointResult {
	t.Helper()
	dir := t.TempDir()
	for name, text := range fpTreeFiles {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db := filepath.Join(dir, "db")
	cli := func(env []string, args ...string) (*exec.Cmd, []byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, append([]string{"--db", db}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("%s: flowscript %s did not end within a minute\n%s", point, strings.Join(args, " "), out.Bytes())
		}
		return cmd, out.Bytes(), err
	}
	var res failpointResult
	cmd, out, err := cli([]string{failpoint.EnvVar + "=" + point}, "run", "fp.star")
	res.killed = isKilled(cmd.ProcessState)
	if err != nil && !res.killed {
		t.Fatalf("%s: run: %v\n%s", point, err, out)
	}
	if _, out, _ := cli(nil, "runs", "--json"); res.killed && !bytes.Contains(out, []byte(`"fp"`)) {
		// killed before the run was created: nothing was acknowledged
		res.notCreated = true
		if _, out, err := cli(nil, "run", "fp.star"); err != nil {
			t.Fatalf("%s: run again: %v\n%s", point, err, out)
		}
	}
	began := time.Now()
	for i := 0; ; i++ {
		_, out, err = cli(nil, "resume")
		if err == nil {
			break
		}
		if i == 3 {
			t.Fatalf("%s: resume: %v\n%s", point, err, out)
		}
	}
	res.recovery = time.Since(began)
	_, out, err = cli(nil, "runs", "--json")
	if err != nil {
		t.Fatalf("%s: runs: %v\n%s", point, err, out)
	}
	var runs []struct {
		Workflow string `json:"workflow"`
		Status   string `json:"status"`
	}
	if err := json.Unmarshal(out, &runs); err != nil {
		t.Fatalf("%s: runs --json: %v\n%s", point, err, out)
	}
	count := map[string]int{}
	for _, r := range runs {
		count[r.Workflow]++
		if r.Status != "succeeded" {
			t.Errorf("%s: a %s run ended %s", point, r.Workflow, r.Status)
		}
	}
	for _, w := range []string{"fp", "kid", "grandkid", "det"} {
		switch c := count[w]; {
		case c > 1:
			res.dupes += c - 1
			t.Errorf("%s: %d runs of %s", point, c, w)
		case c == 0:
			res.lost++
			t.Errorf("%s: no run of %s", point, w)
		}
	}
	if _, out, err := cli(nil, "check"); err != nil {
		t.Errorf("%s: check: %v\n%s", point, err, out)
	}
	ledger, _ := os.ReadFile(filepath.Join(dir, "ledger.txt"))
	if n := bytes.Count(ledger, []byte("\n")); n > 5 {
		res.reran = n - 5
	}
	return res
}
