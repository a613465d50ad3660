package crashtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// The canaries: a one-line secret with characters that JSON and URLs
// escape, and a multi-line one (a PEM-like key).
const (
	canary      = `can<ary"/7f3a9 &x=1`
	canaryLines = "-----BEGIN TEST KEY-----\ncanary-line-one-8d2e4b\ncanary-line-two-4c1f9a\n-----END TEST KEY-----"
)

var secretsStar = `workflow(name = "sec", secrets = ["TOKEN", "KEY"], params = {"url": ""})

def urlenc(s):
    out = ""
    for c in s.elems():
        if c.isalnum() or c in "-_.~":
            out += c
        else:
            out += "%%%02X" % ord(c)
    return out

def leak(ctx):
    t = ctx.secret("TOKEN")
    k = ctx.secret("KEY")
    print("plain " + t)
    ctx.log("json " + json.encode({"t": t, "k": k}))
    print("url " + urlenc(t))
    for line in k.split("\n"):
        print("line " + line)
    r = http.get(ctx.params["url"], headers = {"Authorization": "Bearer " + t, "X-Key": urlenc(k)})
    return {"plain": t, "json": json.encode({"t": t}), "url": urlenc(t), "key": k, "echo": r.body}

def fails(ctx):
    fail("cannot log in with " + json.encode(ctx.secret("TOKEN")) + " or " + urlenc(ctx.secret("KEY")))

task("leak", leak)
shell("sh", "printf %s \"$TOKEN\" | base64 -w0; echo; printf 'user:%s' \"$TOKEN\" | base64 -w0; echo; printf '%s' \"$KEY\" | base64 -w0; echo; printf '%.7s' \"$TOKEN\"; sleep 0.05; printf '%s\\n' \"${TOKEN#???????}\"; echo \"$KEY\" >&2",
      env = {"TOKEN": secret("TOKEN"), "KEY": secret("KEY")})
task("fails", fails, optional = True)
`

// secretForms lists what must not appear: each canary plain, JSON-escaped,
// URL-encoded and base64-encoded (whole, and inside a basic-auth value),
// and each line of the multi-line one.
func secretForms() []string {
	var forms []string
	for _, s := range []string{canary, canaryLines} {
		j, _ := json.Marshal(s)
		forms = append(forms, s, string(j[1:len(j)-1]), url.QueryEscape(s), url.PathEscape(s),
			base64.StdEncoding.EncodeToString([]byte(s)))
	}
	// the base64 of "user:" + canary shares no aligned core with the
	// canary's own: its middle is what a header would show
	basic := base64.StdEncoding.EncodeToString([]byte("user:" + canary))
	forms = append(forms, basic[8:len(basic)-4], "canary-line-one-8d2e4b", "canary-line-two-4c1f9a")
	return forms
}

// TestSecretCanaries runs a workflow that leaks two secrets every way it
// can (print, log, shell stdout and stderr, split across writes, outputs,
// an error, HTTP headers echoed back, in JSON, URL and base64 encodings)
// and counts the canaries in the CLI's output, its log, the run's records,
// history and logs as the CLI shows them, and the database files.
func TestSecretCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the CLI")
	}
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "auth=%s key=%s", r.Header.Get("Authorization"), r.Header.Get("X-Key"))
	}))
	defer echo.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sec.star"), []byte(secretsStar), 0o644)
	db := filepath.Join(dir, "db")
	cli := func(args ...string) []byte {
		cmd := exec.Command(binary, append([]string{"--db", db, "--log-level", "debug"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TOKEN="+canary, "KEY="+canaryLines)
		out, _ := cmd.CombinedOutput()
		return out
	}
	seen := map[string][]byte{}
	seen["run output"] = cli("run", "sec.star", "--param", "url="+echo.URL, "--json")
	id := regexp.MustCompile(`"id": "([0-9a-z]+)"`).FindSubmatch(seen["run output"])
	if id == nil {
		t.Fatalf("no run id in:\n%s", seen["run output"])
	}
	seen["show"] = cli("show", string(id[1]), "--json")
	seen["history"] = cli("history", string(id[1]), "--json")
	seen["logs"] = cli("logs", string(id[1]))
	seen["runs"] = cli("runs", "--json")
	if !bytes.Contains(seen["logs"], []byte("plain ***")) || !bytes.Contains(seen["show"], []byte(`"fails"`)) {
		t.Fatalf("the workflow did not run as the test expects:\n%s\n%s", seen["logs"], seen["show"])
	}
	var dbBytes []byte
	entries, _ := os.ReadDir(db)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(db, e.Name()))
		dbBytes = append(dbBytes, data...)
	}
	seen["database files"] = dbBytes
	total := 0
	for _, place := range []string{"run output", "show", "history", "logs", "runs", "database files"} {
		n := 0
		for _, f := range secretForms() {
			if c := bytes.Count(seen[place], []byte(f)); c > 0 {
				n += c
				t.Errorf("%s holds %q %d times", place, f, c)
			}
		}
		total += n
		figure("secret canaries", "occurrences in "+place, "%d", n)
	}
	if total > 0 {
		t.Logf("logs:\n%s", seen["logs"])
	}
}
