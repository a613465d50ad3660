package mask

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
)

// minFormLen is the shortest derived form of a secret that is masked: a
// shorter piece (a two-letter line of a multi-line secret, the core of a
// base64 encoding of a one-byte secret) would mask ordinary text.
const minFormLen = 4

// secretForms returns the forms in which a secret value commonly leaks,
// besides itself: JSON-escaped (as it appears inside a JSON string),
// URL-encoded (query and path escaping), base64 (standard and URL
// alphabets, at each of the three alignments it can have inside a longer
// encoding, as in an HTTP basic-auth header), and each line of a
// multi-line secret (a PEM key printed line by line).
func secretForms(secret string) []string {
	forms := []string{secret}
	add := func(s string) {
		if len(s) >= minFormLen {
			forms = append(forms, s)
		}
	}
	if j, err := json.Marshal(secret); err == nil {
		add(string(j[1 : len(j)-1]))
	}
	var sb strings.Builder
	enc := json.NewEncoder(&sb)
	enc.SetEscapeHTML(false)
	if enc.Encode(secret) == nil {
		j := strings.TrimSpace(sb.String())
		add(j[1 : len(j)-1])
	}
	add(url.QueryEscape(secret))
	add(url.PathEscape(secret))
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for k := 0; k < 3; k++ {
			add(base64Core(e, secret, k))
		}
	}
	if strings.ContainsAny(secret, "\r\n") {
		for _, line := range strings.FieldsFunc(secret, func(r rune) bool { return r == '\n' || r == '\r' }) {
			add(strings.TrimSpace(line))
		}
	}
	return forms
}

// base64Core is the part of the base64 encoding of secret that does not
// depend on what comes around it, when it starts k bytes into a 3-byte
// group: the characters whose 6 bits all come from the secret.
func base64Core(e *base64.Encoding, secret string, k int) string {
	n := len(secret)
	enc := e.EncodeToString(append(make([]byte, k), secret...))
	lo := (8*k + 5) / 6
	hi := 8 * (k + n) / 6
	if hi <= lo || hi > len(enc) {
		return ""
	}
	return enc[lo:hi]
}
