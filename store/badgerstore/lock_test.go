package badgerstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowscript/flowscript/store"
	"github.com/flowscript/flowscript/store/badgerstore"
)

func TestOpenLockedInProcess(t *testing.T) {
	dir := t.TempDir()
	s := openDir(t, dir, badgerstore.Options{})
	defer s.Close()
	_, err := badgerstore.Open(dir, badgerstore.Options{})
	var le *store.LockedError
	if !errors.As(err, &le) || !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second Open: %v; want a *store.LockedError", err)
	}
	if le.PID != os.Getpid() || le.Dir != dir {
		t.Errorf("LockedError = %+v; want Dir %s, PID %d", le, dir, os.Getpid())
	}
	if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("message %q does not name the directory and the pid", msg)
	}
	// The lock goes with Close.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openDir(t, dir, badgerstore.Options{})
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
}

// helperDirEnv makes the test binary, run as a subprocess, hold a database
// and commit to it until it is killed.
const helperDirEnv = "FLOWSCRIPT_BADGERSTORE_HELPER_DIR"

// TestHelperHoldDatabase is not a test: it is the subprocess of
// TestKilledHolderReleasesLock. It opens the database, then commits key
// crash/N for N = 0, 1, 2, ... and prints "committed N" once Update has
// returned, until it is killed.
func TestHelperHoldDatabase(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("runs only as the subprocess of TestKilledHolderReleasesLock")
	}
	s, err := badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		err := s.Update(context.Background(), func(tx store.Tx) error {
			return tx.Set([]byte(fmt.Sprintf("crash/%06d", i)), []byte(strconv.Itoa(i)))
		})
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("committed %d\n", i)
	}
}

// TestKilledHolderReleasesLock: while another process holds the database,
// Open reports it with its pid; once that process is killed with SIGKILL
// in the middle of committing, Open succeeds (the flock died with it) and
// every commit it acknowledged is there.
func TestKilledHolderReleasesLock(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDatabase$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	acked := -1
	readLine := func() (string, bool) {
		select {
		case l, ok := <-lines:
			return l, ok
		case <-time.After(30 * time.Second):
			t.Fatal("helper process printed nothing for 30s")
			return "", false
		}
	}
	record := func(l string) {
		n, err := strconv.Atoi(strings.TrimPrefix(l, "committed "))
		if err != nil || !strings.HasPrefix(l, "committed ") {
			t.Fatalf("helper process: %s", l)
		}
		acked = n
	}
	for acked < 100 {
		l, ok := readLine()
		if !ok {
			t.Fatal("helper process ended early")
		}
		record(l)
	}

	_, err = badgerstore.Open(dir, badgerstore.Options{})
	var le *store.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Open while another process holds the database: %v; want a *store.LockedError", err)
	}
	if le.PID != cmd.Process.Pid {
		t.Errorf("LockedError names pid %d; the holder is %d", le.PID, cmd.Process.Pid)
	}

	// Kill it while it commits, and keep every acknowledgement it got out.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		record(l)
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper process ended with %v; want it killed by SIGKILL", err)
	}
	// The pid file stays behind, naming a dead process; it does not matter.
	if b, err := os.ReadFile(filepath.Join(dir, "LOCK")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(cmd.Process.Pid) {
		t.Errorf("stale LOCK file: %q, %v; want the killed process's pid", b, err)
	}

	s := openDir(t, dir, badgerstore.Options{})
	defer s.Close()
	n := 0
	err = s.View(context.Background(), func(tx store.Tx) error {
		return tx.Scan([]byte("crash/"), store.ScanOptions{}, func(k, v []byte) error {
			if want := fmt.Sprintf("crash/%06d", n); string(k) != want {
				return fmt.Errorf("key %q where %q was expected", k, want)
			}
			n++
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if n <= acked {
		t.Fatalf("after the kill, commits 0..%d are there, but 0..%d were acknowledged", n-1, acked)
	}
	t.Logf("%d commits acknowledged before SIGKILL, %d found after reopening", acked+1, n)
}
