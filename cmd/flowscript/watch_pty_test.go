package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/flowscript/flowscript"
	"github.com/flowscript/flowscript/internal/testio"
)

// TestWatchRedrawsInATerminal runs watch with its stdout on a real
// terminal (a pty), forwarded to the process holding the database (a run
// in this process): the view is redrawn in place (each frame erases the
// previous one with the terminal library's line clearing) rather than
// appended, and the last frame shows the tree as it ended.
func TestWatchRedrawsInATerminal(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	script := "a = shell(\"a\", \"touch started; while [ ! -f go ]; do sleep 0.05; done\")\n" +
		"shell(\"b\", \"true\", after = [a])\n"
	if err := os.WriteFile("w.star", []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	var runOut, runErr testio.SyncBuffer
	runDone := make(chan int)
	go func() {
		runDone <- run([]string{"flowscript", "run", "w.star"}, strings.NewReader(""), &runOut, &runErr)
	}()
	waitForFile(t, "started")
	waitForFile(t, filepath.Join(".flowscript", flowscript.SocketName))
	var ids bytes.Buffer
	if code := run([]string{"flowscript", "runs", "-q"}, strings.NewReader(""), &ids, io.Discard); code != 0 {
		t.Fatalf("runs -q: exit %d", code)
	}
	id := strings.TrimSpace(ids.String())

	tty, screen := openTerminal(t)
	var watchErr testio.SyncBuffer
	watchDone := make(chan int)
	go func() { watchDone <- run([]string{"flowscript", "watch", id}, strings.NewReader(""), tty, &watchErr) }()
	// let the view be drawn while a runs, then let the run end
	waitUntil(t, func() bool { return strings.Contains(screen.String(), "running now: w/a") })
	if err := os.WriteFile("go", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code := <-watchDone; code != 0 {
		t.Fatalf("watch: exit %d, stderr %q", code, watchErr.String())
	}
	if code := <-runDone; code != 0 {
		t.Fatalf("run: exit %d, stderr %q", code, runErr.String())
	}
	out := screen.close()
	const eraseLine, cursorUp = "\x1b[2K", "\x1b[1A"
	frames := strings.Split(out, eraseLine)
	if len(frames) < 2 || !strings.Contains(out, cursorUp) {
		t.Fatalf("the view was not redrawn in place (%d frames):\n%q", len(frames), out)
	}
	last := frames[len(frames)-1]
	for _, want := range []string{id, "succeeded", "attempt 1"} {
		if !strings.Contains(last, want) {
			t.Fatalf("last frame lacks %q:\n%q", want, last)
		}
	}
	if strings.Contains(last, "running now") {
		t.Fatalf("last frame still shows a running step:\n%q", last)
	}
	// a redraw puts no line twice on the screen: the number of frames
	// drawn is not the number of status lines shown at the end
	if n := regexp.MustCompile(`(?m)^\s*b\s+shell\s+succeeded`).FindAllStringIndex(last, -1); len(n) != 1 {
		t.Fatalf("last frame shows step b %d times:\n%q", len(n), last)
	}
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	waitUntil(t, func() bool { _, err := os.Stat(path); return err == nil })
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunShowsTheLiveViewInATerminal: run, with its stderr on a terminal,
// shows the view of watch, redrawn in place, instead of progress lines;
// stdout still gets "<run-id> <status>".
func TestRunShowsTheLiveViewInATerminal(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	script := "a = shell(\"a\", \"sleep 0.3\")\nshell(\"b\", \"true\", after = [a])\n"
	if err := os.WriteFile("r.star", []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	tty, screen := openTerminal(t)
	var stdout bytes.Buffer
	code := run([]string{"flowscript", "run", "r.star"}, strings.NewReader(""), &stdout, tty)
	out := screen.close()
	if code != 0 {
		t.Fatalf("run: exit %d; terminal:\n%q", code, out)
	}
	if !regexp.MustCompile(`^[0-9a-z]{26} succeeded\n$`).MatchString(stdout.String()) {
		t.Fatalf("stdout %q", stdout.String())
	}
	if !strings.Contains(out, "\x1b[2K\x1b[1A") {
		t.Fatalf("the view was not redrawn in place:\n%q", out)
	}
	if strings.Contains(out, "a started") {
		t.Fatalf("progress lines were printed besides the view:\n%q", out)
	}
	frames := strings.Split(out, "\x1b[2K")
	last := frames[len(frames)-1]
	if !regexp.MustCompile(`(?m)^\s*b\s+shell\s+succeeded\s+attempt 1`).MatchString(last) {
		t.Fatalf("last frame does not show b succeeded:\n%q", last)
	}
}

// terminal is what a program wrote to a pty.
type terminal struct {
	tty  *os.File
	mu   sync.Mutex
	buf  bytes.Buffer
	read chan struct{}
}

// openTerminal gives a pty (skipping the test where there is none): the
// program's end to write to, and what it wrote so far.
func openTerminal(t *testing.T) (*os.File, *terminal) {
	t.Helper()
	master, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pty here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	pty.Setsize(tty, &pty.Winsize{Rows: 40, Cols: 120})
	term := &terminal{tty: tty, read: make(chan struct{})}
	go func() {
		defer close(term.read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			term.mu.Lock()
			term.buf.Write(buf[:n])
			term.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return tty, term
}

func (term *terminal) String() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.buf.String()
}

// close closes the program's end and returns all it wrote.
func (term *terminal) close() string {
	term.tty.Close()
	<-term.read
	return term.String()
}
