package builtins

import (
	"bytes"
	"io"
	"sync"
)

// Prefixes that mark the lines a shell step wrote to stdout and to stderr
// in its log; the lines keep the order in which they were written.
const (
	stdoutMark = "out| "
	stderrMark = "err| "
)

// ShellStreams are the two writers a command's stdout and stderr go to on
// their way to a step's log: each is masked on its own (so that a secret,
// also one of several lines, is masked before any mark is put in it), then
// cut into lines that reach the log marked, whole lines at a time.
type ShellStreams struct {
	Out, Err io.Writer
	maskers  []*Masker
	markers  []*lineMarker
}

// MarkStreams gives the streams of one command whose output goes to log.
func MarkStreams(log io.Writer, secrets []string) *ShellStreams {
	var mu sync.Mutex
	s := &ShellStreams{}
	for _, mark := range []string{stdoutMark, stderrMark} {
		lm := &lineMarker{mark: []byte(mark), sink: log, mu: &mu}
		m := NewMasker(lm, secrets)
		s.markers = append(s.markers, lm)
		s.maskers = append(s.maskers, m)
	}
	s.Out, s.Err = s.maskers[0], s.maskers[1]
	return s
}

// Close writes what the streams still hold: the bytes a masker held back
// and a last line without its newline.
func (s *ShellStreams) Close() {
	for i, m := range s.maskers {
		m.Close()
		s.markers[i].flush()
	}
}

// maxPartialLine is how much of a line without its newline a stream
// holds back; a longer one goes to the log in pieces, marked once.
const maxPartialLine = 64 << 10

// lineMarker writes whole lines to sink, each after mark.
type lineMarker struct {
	mark    []byte
	sink    io.Writer
	mu      *sync.Mutex // shared by the streams of one step
	partial []byte
	midLine bool // the log holds the start of the current line already
}

func (l *lineMarker) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	if i := bytes.LastIndexByte(l.partial, '\n'); i >= 0 {
		l.emit(l.partial[:i+1])
		l.partial = append(l.partial[:0], l.partial[i+1:]...)
	}
	if len(l.partial) > maxPartialLine {
		l.emit(l.partial)
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

func (l *lineMarker) flush() {
	if len(l.partial) > 0 || l.midLine {
		l.emit(append(l.partial, '\n'))
		l.partial = nil
	}
}

// emit writes text, a mark before each line that starts in it.
func (l *lineMarker) emit(text []byte) {
	var b bytes.Buffer
	for len(text) > 0 {
		if !l.midLine {
			b.Write(l.mark)
		}
		i := bytes.IndexByte(text, '\n')
		if i < 0 {
			b.Write(text)
			l.midLine = true
			break
		}
		b.Write(text[:i+1])
		text = text[i+1:]
		l.midLine = false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.sink.Write(b.Bytes()) // a failing log must not block the command
}
