package natsstore

import (
	"bytes"
	"strings"
	"testing"
)

func TestSubjectEncoding(t *testing.T) {
	const base = "fs.db.k"
	for _, c := range []struct{ key, subject string }{
		{"run/r1/step/0001", "fs.db.k.run.r1.step.0001"},
		{"a", "fs.db.k.a"},
		{"a/", "fs.db.k.a._"},
		{"/", "fs.db.k._._"},
		{"p/\xff\xff", "fs.db.k.p._FF_FF"},
		{"x.y*z>w v_", "fs.db.k.x_2Ey_2Az_3Ew_20v_5F"},
		{"\x00", "fs.db.k._00"},
	} {
		got := keySubject(base, []byte(c.key))
		if got != c.subject {
			t.Errorf("keySubject(%q) = %q; want %q", c.key, got, c.subject)
		}
		back, err := subjectKey(base, got)
		if err != nil || string(back) != c.key {
			t.Errorf("subjectKey(%q) = %q, %v; want %q", got, back, err, c.key)
		}
	}
	for _, bad := range []string{"fs.db.k", "fs.db.k.", "fs.other.a", "fs.db.k.a_F", "fs.db.k.a_GG", "fs.db.k.a.b_", "fs.db.k.a._2"} {
		if key, err := subjectKey(base, bad); err == nil {
			t.Errorf("subjectKey(%q) = %q; want an error", bad, key)
		}
	}
}

func TestPrefixFilter(t *testing.T) {
	const base = "fs.db.k"
	for _, c := range []struct{ prefix, filter string }{
		{"", "fs.db.k.>"},
		{"p", "fs.db.k.>"},
		{"p/", "fs.db.k.p.>"},
		{"run/r1/st", "fs.db.k.run.r1.>"},
		{"run/r1/", "fs.db.k.run.r1.>"},
		{"/", "fs.db.k._.>"},
	} {
		if got := prefixFilter(base, []byte(c.prefix)); got != c.filter {
			t.Errorf("prefixFilter(%q) = %q; want %q", c.prefix, got, c.filter)
		}
	}
}

// FuzzSubjectEncoding: every key maps to a valid subject that decodes
// back to it, and every key with a prefix lies under that prefix's filter.
func FuzzSubjectEncoding(f *testing.F) {
	f.Add([]byte("run/r1/step/0001"), 4)
	f.Add([]byte("p/\xff\xff"), 2)
	f.Add([]byte("//"), 1)
	f.Add([]byte("\x00_._"), 3)
	f.Fuzz(func(t *testing.T, key []byte, cut int) {
		if len(key) == 0 {
			return
		}
		const base = "fs.db.k"
		subj := keySubject(base, key)
		for _, tok := range strings.Split(subj, ".") {
			if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
				t.Fatalf("keySubject(%q) = %q: not a valid literal subject", key, subj)
			}
		}
		for i := 0; i < len(subj); i++ {
			if subj[i] < 0x21 || subj[i] > 0x7e {
				t.Fatalf("keySubject(%q) = %q: byte %#x is not printable ASCII", key, subj, subj[i])
			}
		}
		back, err := subjectKey(base, subj)
		if err != nil || !bytes.Equal(back, key) {
			t.Fatalf("subjectKey(keySubject(%q)) = %q, %v", key, back, err)
		}
		if cut < 0 {
			cut = -cut
		}
		prefix := key[:cut%(len(key)+1)]
		filter := prefixFilter(base, prefix)
		if !matches(filter, subj) {
			t.Fatalf("key %q with prefix %q: subject %q is not under filter %q", key, prefix, subj, filter)
		}
	})
}

// matches reports whether a literal subject matches a filter whose only
// wildcard is a trailing '>'.
func matches(filter, subject string) bool {
	head, ok := strings.CutSuffix(filter, ">")
	if !ok {
		return filter == subject
	}
	return strings.HasPrefix(subject, head) && len(subject) > len(head)
}
