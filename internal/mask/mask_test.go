package mask

import (
	"bytes"
	"math/rand"
	"sort"
	"strings"
	"testing"
)

// maskReference is the masking rule written the slow, obvious way: find
// every occurrence of every secret, merge occurrences that overlap, and
// replace each merged run with "***".
func maskReference(s string, secrets []string) string {
	type span struct{ start, end int }
	var spans []span
	for _, sec := range secrets {
		if sec == "" {
			continue
		}
		for i := 0; i+len(sec) <= len(s); i++ {
			if s[i:i+len(sec)] == sec {
				spans = append(spans, span{i, i + len(sec)})
			}
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start < spans[j].start })
	var b strings.Builder
	pos, end := 0, -1
	for _, sp := range spans {
		if sp.start < end { // overlaps the current run
			end = max(end, sp.end)
			continue
		}
		if end >= 0 {
			pos = end
		}
		b.WriteString(s[pos:sp.start])
		b.WriteString(Mask)
		end = sp.end
	}
	if end >= 0 {
		pos = end
	}
	b.WriteString(s[pos:])
	return b.String()
}

func TestMaskString(t *testing.T) {
	tests := []struct {
		in      string
		secrets []string
		want    string
	}{
		{"token=hunter2 ok", []string{"hunter2"}, "token=*** ok"},
		{"hunter2hunter2", []string{"hunter2"}, "******"},
		{"a hunter2 b hunter2", []string{"hunter2"}, "a *** b ***"},
		{"nothing here", []string{"hunter2"}, "nothing here"},
		{"empty secret", []string{""}, "empty secret"},
		{"no secrets", nil, "no secrets"},
		// a secret that is a prefix of another: the longer one wins
		{"x abcdef y abc z", []string{"abc", "abcdef"}, "x *** y *** z"},
		{"x abcdef y abc z", []string{"abcdef", "abc"}, "x *** y *** z"},
		// overlapping secrets hide every byte of both, as one mask
		{"--abcdef--", []string{"abcd", "cdef"}, "--***--"},
		{"aaa", []string{"aa"}, "***"},
		{"aaaa", []string{"aa"}, "***"},
		// a secret inside another
		{"xsecretx", []string{"secret", "cre"}, "x***x"},
		{"Hunter2", []string{"hunter2"}, "Hunter2"},
		{"duplicates", []string{"dup", "dup"}, "***licates"},
	}
	for _, tt := range tests {
		if got := String(tt.in, tt.secrets); got != tt.want {
			t.Errorf("String(%q, %q) = %q, want %q", tt.in, tt.secrets, got, tt.want)
		}
		if got := maskReference(tt.in, tt.secrets); got != tt.want {
			t.Errorf("maskReference(%q, %q) = %q, want %q (the test's reference is wrong)", tt.in, tt.secrets, got, tt.want)
		}
	}
}

// writeChunks writes s to a new Masker in the chunks that the cut points
// (increasing offsets into s) make, then closes it.
func writeChunks(t *testing.T, s string, secrets []string, cuts ...int) string {
	t.Helper()
	var out bytes.Buffer
	m := New(&out, secrets)
	prev := 0
	for _, c := range append(cuts, len(s)) {
		n, err := m.Write([]byte(s[prev:c]))
		if err != nil || n != c-prev {
			t.Fatalf("Write = %d, %v; want %d, nil", n, err, c-prev)
		}
		prev = c
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

var maskCases = []struct {
	text    string
	secrets []string
}{
	{"the token is hunter2, and again hunter2!", []string{"hunter2"}},
	{"hunter2", []string{"hunter2"}},
	{"hunterhunter2hunte", []string{"hunter2"}},
	{"x abcdef y abc z abcde", []string{"abc", "abcdef"}},
	{"--abcdef--cdef--abcd", []string{"abcd", "cdef"}},
	{"aaaaaaa", []string{"aa"}},
	{"aaaaaaa", []string{"aaa", "a"}},
	{"p4ss p4 p4ssw0rd p4ssw0", []string{"p4ssw0rd", "p4ss", "w0"}},
	{"line1\nsecret\nline3 secre", []string{"secret"}},
	{"no secrets at all", []string{"zzz"}},
}

// TestMaskerEverySplit cuts each text at every single point and every pair
// of points: the streamed result is always that of String on the whole.
func TestMaskerEverySplit(t *testing.T) {
	for _, c := range maskCases {
		want := maskReference(c.text, c.secrets)
		if got := String(c.text, c.secrets); got != want {
			t.Fatalf("String(%q) = %q, want %q", c.text, got, want)
		}
		for i := 0; i <= len(c.text); i++ {
			if got := writeChunks(t, c.text, c.secrets, i); got != want {
				t.Fatalf("%q cut at %d: got %q, want %q", c.text, i, got, want)
			}
			for j := i; j <= len(c.text); j++ {
				if got := writeChunks(t, c.text, c.secrets, i, j); got != want {
					t.Fatalf("%q cut at %d and %d: got %q, want %q", c.text, i, j, got, want)
				}
			}
		}
		cuts := make([]int, 0, len(c.text))
		for i := 1; i < len(c.text); i++ {
			cuts = append(cuts, i)
		}
		if got := writeChunks(t, c.text, c.secrets, cuts...); got != want {
			t.Fatalf("%q byte by byte: got %q, want %q", c.text, got, want)
		}
	}
}

// TestMaskerRandom compares random texts, secrets and chunkings over a
// two-letter alphabet (where secrets overlap a lot) with the reference.
func TestMaskerRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "ab"[rng.Intn(2)]
		}
		return string(b)
	}
	for iter := 0; iter < 3000; iter++ {
		secrets := make([]string, 1+rng.Intn(3))
		for i := range secrets {
			secrets[i] = word(1 + rng.Intn(5))
		}
		text := word(rng.Intn(40))
		var cuts []int
		for i := 1; i < len(text); i++ {
			if rng.Intn(4) == 0 {
				cuts = append(cuts, i)
			}
		}
		want := maskReference(text, secrets)
		got := writeChunks(t, text, secrets, cuts...)
		if got != want {
			t.Fatalf("text %q secrets %q cuts %v: got %q, want %q", text, secrets, cuts, got, want)
		}
		for _, s := range secrets {
			if strings.Contains(got, s) {
				t.Fatalf("text %q secrets %q: output %q still holds %q", text, secrets, got, s)
			}
		}
	}
}

func TestMaskerHoldsBackOnlyWhatCouldBeASecret(t *testing.T) {
	var out bytes.Buffer
	m := New(&out, []string{"hunter2"})
	m.Write([]byte("hello hun"))
	if got := out.String(); got != "hello " {
		t.Fatalf("after a partial secret: wrote %q, want %q", got, "hello ")
	}
	m.Write([]byte("ter2 bye"))
	if got := out.String(); got != "hello *** bye" {
		t.Fatalf("got %q", got)
	}
	m.Write([]byte(" hunt"))
	if err := m.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "hello *** bye hunt" {
		t.Fatalf("after Flush: got %q", got)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}
}

func TestMaskerWithoutSecretsPassesThrough(t *testing.T) {
	var out bytes.Buffer
	m := New(&out, []string{"", ""})
	m.Write([]byte("abc"))
	if out.String() != "abc" {
		t.Fatalf("got %q", out.String())
	}
}

func TestMaskValue(t *testing.T) {
	in := map[string]any{
		"token":  "Bearer s3cr3t",
		"list":   []any{"s3cr3t", 1, true, nil, map[string]any{"deep": "xs3cr3tx"}},
		"s3cr3t": "key holds it",
		"n":      int64(7),
		"env":    map[string]string{"A": "s3cr3t"},
		"args":   []string{"--pw", "s3cr3t"},
	}
	got := Value(in, []string{"s3cr3t"}).(map[string]any)
	if got["token"] != "Bearer ***" {
		t.Errorf("token = %v", got["token"])
	}
	list := got["list"].([]any)
	if list[0] != "***" || list[1] != 1 || list[2] != true || list[3] != nil {
		t.Errorf("list = %v", list)
	}
	if d := list[4].(map[string]any)["deep"]; d != "x***x" {
		t.Errorf("deep = %v", d)
	}
	if got["***"] != "key holds it" {
		t.Errorf("map key not masked: %v", got)
	}
	if got["env"].(map[string]string)["A"] != "***" || got["args"].([]string)[1] != "***" {
		t.Errorf("env/args = %v %v", got["env"], got["args"])
	}
	if in["token"] != "Bearer s3cr3t" || in["list"].([]any)[0] != "s3cr3t" {
		t.Errorf("MaskValue changed its input: %v", in)
	}
	if Value("plain", nil) != "plain" {
		t.Error("MaskValue without secrets changed a value")
	}
}

// allForms lists every form of each secret that the masker hides
// (secretForms, tested in forms_test.go).
func allForms(secrets []string) []string {
	var all []string
	for _, s := range secrets {
		if s != "" {
			all = append(all, secretForms(s)...)
		}
	}
	return all
}

func FuzzMasker(f *testing.F) {
	f.Add("the token is hunter2!", "hunter2", "hunt", 5)
	f.Add("abcabcab", "abc", "bca", 3)
	f.Add("aaaa", "aa", "a", 1)
	f.Fuzz(func(t *testing.T, text, s1, s2 string, step int) {
		if step <= 0 || step > 64 {
			step = 1
		}
		secrets := []string{s1, s2}
		// the masker hides the forms a secret leaks in too (a line of a
		// multi-line secret, its JSON escaping, base64...): the reference
		// masks all of them, found the slow way
		want := maskReference(text, allForms(secrets))
		if got := String(text, secrets); got != want {
			t.Fatalf("MaskString = %q, want %q", got, want)
		}
		var cuts []int
		for i := step; i < len(text); i += step {
			cuts = append(cuts, i)
		}
		if got := writeChunks(t, text, secrets, cuts...); got != want {
			t.Fatalf("streamed = %q, want %q", got, want)
		}
	})
}
