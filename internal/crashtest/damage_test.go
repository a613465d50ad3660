package crashtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// damageRuns is how many runs the damaged databases hold.
const damageRuns = 20

// TestDamagedDatabases damages each kind of file of a database of 20 runs
// (closed cleanly, and left by a kill -9), by truncating it to half,
// flipping one byte in its middle, or deleting it. Every command must
// then either refuse the database (exit 2, no file changed) or show all
// 20 runs; never fewer runs with exit 0, never a crash. `check` must
// agree: exit 0 or 2, and 2 whenever `runs` refused.
func TestDamagedDatabases(t *testing.T) {
	if testing.Short() {
		t.Skip("builds databases with the CLI")
	}
	long := os.Getenv("FLOWSCRIPT_RELIABILITY_ROUNDS") != ""
	clean := damageBase(t, false)
	killed := damageBase(t, true)
	var cases, refused, whole, fewer, touched, checkDisagrees int
	for _, base := range []struct{ name, dir string }{{"closed", clean}, {"killed", killed}} {
		entries, _ := os.ReadDir(base.dir)
		kinds := map[string]string{} // kind -> a file of that kind (the middle one)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		byKind := map[string][]string{}
		for _, n := range names {
			k := n
			if ext := filepath.Ext(n); ext != "" && ext != ".db" {
				k = ext
			}
			if n == "flowscript.lock" || n == "LOCK" || strings.HasPrefix(k, "flowscript.sock") {
				continue
			}
			byKind[k] = append(byKind[k], n)
		}
		for k, files := range byKind {
			kinds[k] = files[len(files)/2]
		}
		for kind, file := range kinds {
			for _, how := range []string{"truncated", "flipped", "deleted"} {
				if !long && base.name == "killed" && !(kind == ".mem" && how == "deleted") {
					continue // make reliability damages the killed database in every way
				}
				name := fmt.Sprintf("%s %s %s", base.name, kind, how)
				dir := copyDir(t, base.dir)
				if !damage(t, filepath.Join(dir, file), how) {
					continue // an empty file: nothing to flip or truncate
				}
				cases++
				before := sums(t, dir)
				code, n, out := listRuns(t, dir)
				after := sums(t, dir)
				switch {
				case code == 2 && !strings.Contains(out, "goroutine "):
					refused++
					if !bytes.Equal(before, after) {
						touched++
						t.Errorf("%s: refused, but files changed:\n%s", name, tail(out))
					}
				case code == 0 && n == damageRuns:
					whole++
				case code == 0:
					fewer++
					t.Errorf("%s: runs exits 0 with %d of %d runs", name, n, damageRuns)
				default:
					t.Errorf("%s: runs exits %d:\n%s", name, code, tail(out))
				}
				ccode, cout := checkDB(t, dir)
				if ccode != 0 && ccode != 2 || (code == 2 && ccode != 2) {
					checkDisagrees++
					t.Errorf("%s: check exits %d after runs exited %d:\n%s", name, ccode, code, tail(cout))
				}
			}
		}
	}
	figure("damaged databases", "cases (file kinds x truncated, flipped, deleted)", "%d", cases)
	figure("damaged databases", "refused with exit 2, no file changed", "%d", refused)
	figure("damaged databases", "opened with all 20 runs", "%d", whole)
	figure("damaged databases", "fewer runs silently", "%d", fewer)
	figure("damaged databases", "files changed by a refusal", "%d", touched)
	figure("damaged databases", "check disagreeing", "%d", checkDisagrees)
}

// damageBase makes a database of damageRuns runs; with killed, the last
// command is killed with SIGKILL while its run's step sleeps, so that the
// memtable log is left to replay.
func damageBase(t *testing.T, killed bool) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.star"), []byte("workflow(name = \"w\")\ndef b(ctx):\n    return {\"x\": \"y\" * 70000}\ntask(\"a\", b)\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "s.star"), []byte("workflow(name = \"s\")\nshell(\"a\", \"touch started; sleep 30\")\n"), 0o644)
	db := filepath.Join(dir, "db")
	n := damageRuns
	if killed {
		n--
	}
	for i := 0; i < n; i++ {
		cmd := exec.Command(binary, "--db", db, "run", "w.star")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
	}
	if killed {
		cmd := exec.Command(binary, "--db", db, "run", "s.star")
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 500; i++ {
			if _, err := os.Stat(filepath.Join(dir, "started")); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the CLI and its shell step
		cmd.Wait()
	}
	return db
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "db")
	if out, err := exec.Command("cp", "-r", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return to
}

func damage(t *testing.T, path, how string) bool {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	switch how {
	case "deleted":
		return os.Remove(path) == nil
	case "truncated":
		if fi.Size() == 0 {
			return false
		}
		return os.Truncate(path, fi.Size()/2) == nil
	}
	if fi.Size() == 0 {
		return false
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	off := fi.Size() / 2
	f.ReadAt(b, off)
	b[0] ^= 0x5a
	_, err = f.WriteAt(b, off)
	return err == nil
}

// sums hashes every file in dir but the lock files, in name order.
func sums(t *testing.T, dir string) []byte {
	entries, _ := os.ReadDir(dir)
	h := sha256.New()
	for _, e := range entries {
		if e.Name() == "flowscript.lock" || e.Name() == "LOCK" {
			continue
		}
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		fmt.Fprintf(h, "%s %d\n", e.Name(), len(data))
		h.Write(data)
	}
	return h.Sum(nil)
}

func listRuns(t *testing.T, db string) (code, n int, out string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--db", db, "runs", "--json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	var runs []json.RawMessage
	if json.Unmarshal(stdout.Bytes(), &runs) == nil {
		n = len(runs)
	}
	return cmd.ProcessState.ExitCode(), n, stdout.String() + stderr.String()
}

func checkDB(t *testing.T, db string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--db", db, "check")
	out, _ := cmd.CombinedOutput()
	return cmd.ProcessState.ExitCode(), string(out)
}
