package mask_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/internal/mask"
)

// A secret is masked in the forms it leaks in: JSON-escaped, URL-encoded,
// base64 (alone, or inside a longer encoding such as a basic-auth header,
// at every alignment), and each line of a multi-line secret; also when
// the form is split across writes.
func TestSecretFormsAreMasked(t *testing.T) {
	secret := "s3cr\"et/v@l ue+&=\\x"
	pem := "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEFAASCAT\nkwggE9AgEAAkEAu0a1b2c3d4e5f6g7h8\n-----END KEY-----"
	jsonEsc, _ := json.Marshal(secret)
	cases := map[string]string{
		"plain":         "token=" + secret + ";",
		"json":          `{"t":` + string(jsonEsc) + `}`,
		"query":         "https://x.example/?t=" + url.QueryEscape(secret),
		"path":          "https://x.example/" + url.PathEscape(secret),
		"base64":        "Authorization: Bearer " + base64.StdEncoding.EncodeToString([]byte(secret)),
		"base64url":     base64.URLEncoding.EncodeToString([]byte(secret)),
		"pem line":      "line: MIIBVwIBADANBgkqhkiG9w0BAQEFAASCAT\n",
		"pem escaped":   string(must(json.Marshal(pem))),
		"pem base64":    base64.StdEncoding.EncodeToString([]byte(pem)),
		"pem wholesale": pem,
	}
	for _, prefix := range []string{"u:", "us:", "use:", "user:"} {
		cases["basic auth "+prefix] = "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(prefix+secret))
	}
	leaks := func(out string) []string {
		var found []string
		for _, form := range []string{secret, string(jsonEsc[1 : len(jsonEsc)-1]), url.QueryEscape(secret), url.PathEscape(secret),
			"MIIBVwIBADANBgkqhkiG9w0BAQEFAASCAT", "kwggE9AgEAAkEAu0a1b2c3d4e5f6g7h8"} {
			if strings.Contains(out, form) {
				found = append(found, form)
			}
		}
		// what survives of a base64 form must not decode to the secret
		for _, e := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			for _, word := range strings.FieldsFunc(out, func(r rune) bool { return r == ' ' || r == '"' || r == '\n' }) {
				if d, err := e.DecodeString(word); err == nil && (strings.Contains(string(d), secret) || strings.Contains(string(d), "MIIBVwIBADANBgkqhkiG9w0BAQEFAASCAT")) {
					found = append(found, "base64 of the secret")
				}
			}
		}
		return found
	}
	for name, text := range cases {
		out := mask.String(text, []string{secret, pem})
		if l := leaks(out); len(l) > 0 {
			t.Errorf("%s: %q leaks %q", name, out, l)
		}
		var buf bytes.Buffer
		m := mask.New(&buf, []string{secret, pem})
		for i := 0; i < len(text); i += 3 { // split across writes
			m.Write([]byte(text[i:min(i+3, len(text))]))
		}
		m.Close()
		if buf.String() != out {
			t.Errorf("%s: the masker wrote %q, String gave %q", name, buf.String(), out)
		}
	}
}

// Derived forms shorter than four bytes are not masked: the lines of a
// multi-line secret such as "a\nb" would otherwise hide every "a".
func TestShortFormsAreNotMasked(t *testing.T) {
	if got := mask.String("a cat and a bat", []string{"a\nb"}); got != "a cat and a bat" {
		t.Fatalf("got %q", got)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
