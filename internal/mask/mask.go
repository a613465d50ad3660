package mask

import (
	"bytes"
	"errors"
	"io"
	"sort"
	"sync"
)

// Mask is what a secret value is replaced with.
const Mask = "***"

// Masking rule (String, Value and Masker agree byte for byte):
// every byte that belongs to an occurrence of a secret is hidden, and each
// run of hidden bytes made of overlapping occurrences becomes one "***".
// Occurrences that merely touch (a secret written twice in a row) stay two
// masks, as strings.ReplaceAll would give. So "abcdef" with the secrets
// "abcd" and "cdef" masks to "***", and "aaa" with the secret "aa" to "***".

// Each secret is masked in the forms it commonly leaks in too (see
// secretForms): JSON-escaped, URL-encoded, base64, and line by line.

// Masker is an io.WriteCloser that writes to w with every secret value
// replaced by "***", even a secret split across two Write calls: it holds
// back at most (longest secret − 1) bytes until it knows they are not the
// start of a secret. Flush or Close writes what is held back. Close does
// not close w. A Masker is safe for concurrent use; every sink of a step's
// output should go through one Masker.
type Masker struct {
	mu      sync.Mutex
	w       io.Writer
	m       *matcher
	buf     []byte // bytes not yet decided
	cover   int    // bytes of buf already known to be inside a mask
	closed  bool
	scratch []byte
}

// New returns a Masker writing to w. Empty secrets are ignored.
func New(w io.Writer, secrets []string) *Masker {
	return &Masker{w: w, m: newMatcher(secrets)}
}

var errMaskerClosed = errors.New("masker: write after close")

// Write masks p and writes what can be decided to the underlying writer.
// It reports len(p) when the underlying writer accepted everything.
func (m *Masker) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errMaskerClosed
	}
	if m.m == nil {
		return m.w.Write(p)
	}
	m.buf = append(m.buf, p...)
	if err := m.drain(false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the bytes held back, masked. A secret that starts in them
// and would continue in later writes is not masked by a later Write.
func (m *Masker) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	return m.drain(true)
}

// Close flushes and makes later writes fail. It does not close the
// underlying writer.
func (m *Masker) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if m.m == nil {
		return nil
	}
	return m.drain(true)
}

func (m *Masker) drain(final bool) error {
	out := m.scratch[:0]
	var n int
	out, n, m.cover = m.m.mask(out, m.buf, m.cover, final)
	m.buf = append(m.buf[:0], m.buf[n:]...)
	m.scratch = out[:0]
	if len(out) == 0 {
		return nil
	}
	_, err := m.w.Write(out)
	return err
}

// String returns s with every secret value in it replaced by "***".
func String(s string, secrets []string) string {
	m := newMatcher(secrets)
	if m == nil || !m.contains(s) {
		return s
	}
	out, _, _ := m.mask(nil, []byte(s), 0, true)
	return string(out)
}

// Value returns v with every string inside it (map keys included)
// masked by String. Maps and slices are copied, never changed in place;
// values of other types come back as they are.
func Value(v any, secrets []string) any {
	m := newMatcher(secrets)
	if m == nil {
		return v
	}
	return m.maskValue(v)
}

func (m *matcher) maskValue(v any) any {
	switch v := v.(type) {
	case string:
		return m.maskString(v)
	case []byte:
		if !m.contains(string(v)) {
			return v
		}
		out, _, _ := m.mask(nil, v, 0, true)
		return out
	case map[string]any:
		if v == nil {
			return v
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[m.maskString(k)] = m.maskValue(e)
		}
		return out
	case []any:
		if v == nil {
			return v
		}
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = m.maskValue(e)
		}
		return out
	case map[string]string:
		if v == nil {
			return v
		}
		out := make(map[string]string, len(v))
		for k, e := range v {
			out[m.maskString(k)] = m.maskString(e)
		}
		return out
	case []string:
		if v == nil {
			return v
		}
		out := make([]string, len(v))
		for i, e := range v {
			out[i] = m.maskString(e)
		}
		return out
	}
	return v
}

func (m *matcher) maskString(s string) string {
	if !m.contains(s) {
		return s
	}
	out, _, _ := m.mask(nil, []byte(s), 0, true)
	return string(out)
}

// matcher finds secrets; nil means there is nothing to mask.
type matcher struct {
	secrets [][]byte // distinct, non-empty, longest first
	first   [256]bool
}

func newMatcher(secrets []string) *matcher {
	seen := map[string]bool{}
	var list []string
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		for _, s := range secretForms(secret) {
			if !seen[s] {
				seen[s] = true
				list = append(list, s)
			}
		}
	}
	if len(list) == 0 {
		return nil
	}
	sort.SliceStable(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	m := &matcher{}
	for _, s := range list {
		m.secrets = append(m.secrets, []byte(s))
		m.first[s[0]] = true
	}
	return m
}

func (m *matcher) contains(s string) bool {
	for _, sec := range m.secrets {
		if bytes.Contains([]byte(s), sec) {
			return true
		}
	}
	return false
}

// mask appends to out the masked form of the bytes of buf that can be
// decided, and returns how many bytes of buf it consumed and the new cover
// (how many of the remaining bytes are already known to be masked). cover
// is the same on entry, for the start of buf. Unless final, it stops at
// the first position where what follows could be the start of a secret
// that buf does not hold entirely yet.
func (m *matcher) mask(out, buf []byte, cover int, final bool) ([]byte, int, int) {
	i := 0
	for ; i < len(buf); i++ {
		if m.first[buf[i]] {
			rest := buf[i:]
			if !final && m.couldStart(rest) {
				break
			}
			if l := m.longestAt(rest); l > 0 {
				if i >= cover {
					out = append(out, Mask...)
				}
				cover = max(cover, i+l)
			}
		}
		if i < cover {
			continue
		}
		out = append(out, buf[i])
	}
	return out, i, max(cover-i, 0)
}

// couldStart reports whether rest is a proper prefix of some secret.
func (m *matcher) couldStart(rest []byte) bool {
	for _, s := range m.secrets {
		if len(s) > len(rest) && bytes.HasPrefix(s, rest) {
			return true
		}
	}
	return false
}

// longestAt is the length of the longest secret that rest starts with, or 0.
func (m *matcher) longestAt(rest []byte) int {
	for _, s := range m.secrets { // longest first
		if bytes.HasPrefix(rest, s) {
			return len(s)
		}
	}
	return 0
}
