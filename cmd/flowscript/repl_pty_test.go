package main

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptySession drives `flowscript repl` through a real terminal.
type ptySession struct {
	t    *testing.T
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	seen int // how much of out expect has consumed
}

func (p *ptySession) read() {
	buf := make([]byte, 4096)
	for {
		n, err := p.tty.Read(buf)
		p.mu.Lock()
		p.out.Write(buf[:n])
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (p *ptySession) send(s string) {
	p.t.Helper()
	if _, err := io.WriteString(p.tty, s); err != nil {
		p.t.Fatalf("writing %q to the terminal: %v", s, err)
	}
}

// expect waits for text to appear after what earlier calls consumed. The
// deadline only bounds a hung session; nothing here measures time.
func (p *ptySession) expect(text string) {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		all := p.out.String()
		p.mu.Unlock()
		if i := strings.Index(all[p.seen:], text); i >= 0 {
			p.seen += i + len(text)
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %q; it shows:\n%s", text, all)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplTerminal types into the REPL through a pty: a multi-line def
// (continued with "... " and ended by a blank line), Ctrl-C dropping a
// half-typed line, the up arrow recalling the previous command from the
// history, a run on the database, Ctrl-C cancelling a run, and Ctrl-D
// ending the session with exit 0 and the history saved.
func TestReplTerminal(t *testing.T) {
	bin, err := exec.LookPath("flowscript")
	if err != nil {
		t.Skip("the flowscript test command is not on PATH")
	}
	dir := t.TempDir()
	history := filepath.Join(dir, "history")
	cmd := exec.Command(bin, "repl", "--db", filepath.Join(dir, "db"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FLOWSCRIPT_HISTORY="+history, "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 120})
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer tty.Close()
	p := &ptySession{t: t, tty: tty}
	go p.read()

	p.expect(">>> ")
	// multi-line input: the def continues until a blank line
	p.send("def answer(ctx):\r")
	p.expect("... ")
	p.send("    return {\"n\": 41 + 1}\r")
	p.expect("... ")
	p.send("\r")
	p.expect(">>> ")
	p.send("a = task(\"answer\", answer)\r")
	p.expect(">>> ")

	// Ctrl-C drops the line being typed
	p.send("task(\"never\", answer")
	p.send("\x03")
	p.expect("^C")
	p.expect(">>> ")

	// the up arrow recalls the last command from the history
	p.send("validate()\r")
	p.expect(`ok (workflow "repl", 1 step)`)
	p.expect(">>> ")
	p.send("\x1b[A")
	p.expect("validate()")
	p.send("\r")
	p.expect(`ok (workflow "repl", 1 step)`)
	p.expect(">>> ")

	// run it on the database and look at the run
	p.send("r = run()\r")
	p.expect(" succeeded\r\n")
	p.expect(">>> ")
	p.send("r.steps[\"answer\"].output\r")
	p.expect(`{"n": 42}`)
	p.expect(">>> ")
	p.send("source()\r")
	p.expect("a = task(\"answer\", answer)")
	p.expect(">>> ")

	// Ctrl-C while a run runs cancels it
	p.send("reset()\r")
	p.expect(">>> ")
	p.send("shell(\"wait\", \"sleep 60\")\r")
	p.expect(">>> ")
	p.send("run()\r")
	p.expect("wait started")
	p.send("\x03")
	p.expect(" cancelled\r\n")
	p.expect(">>> ")

	// Ctrl-D ends the session
	p.send("\x04")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the session did not end with exit 0: %v\n%s", err, p.out.String())
	}
	p.mu.Lock()
	all := p.out.String()
	p.mu.Unlock()
	if strings.Contains(all[strings.LastIndex(all, "source()"):], "never") {
		t.Errorf("the line dropped by Ctrl-C reached the session's script:\n%s", all)
	}
	saved, err := os.ReadFile(history)
	if err != nil || !strings.Contains(string(saved), "validate()") || strings.Contains(string(saved), "never") {
		t.Errorf("history file: %v\n%s", err, saved)
	}
}
