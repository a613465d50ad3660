package builtins

import (
	"bytes"
	"strings"
	"testing"
)

// Lines of stdout and stderr reach the log marked, whole, in the order
// they were completed; a secret is masked before any mark is put in it,
// also one written in pieces or spanning lines.
func TestMarkStreams(t *testing.T) {
	var log bytes.Buffer
	s := MarkStreams(&log, []string{"s3cr3t", "line1\nline2"})
	s.Out.Write([]byte("hello "))
	s.Err.Write([]byte("warn: s3c"))
	s.Out.Write([]byte("world\nline1\nli"))
	s.Err.Write([]byte("r3t here\n"))
	s.Out.Write([]byte("ne2 after\nno newline"))
	s.Close()
	want := "out| hello world\nerr| warn: *** here\nout| *** after\nout| no newline\n"
	if got := log.String(); got != want {
		t.Fatalf("log:\n%q\nwant\n%q", got, want)
	}
}

// A line longer than the stream holds back goes to the log in pieces,
// marked once.
func TestMarkStreamsLongLine(t *testing.T) {
	var log bytes.Buffer
	s := MarkStreams(&log, nil)
	long := strings.Repeat("a", maxPartialLine+10)
	s.Out.Write([]byte(long))
	s.Out.Write([]byte("b\nc\n"))
	s.Close()
	want := "out| " + long + "b\nout| c\n"
	if got := log.String(); got != want {
		t.Fatalf("log has %d bytes, %d marks; want %d bytes", len(got), strings.Count(got, "out| "), len(want))
	}
}
