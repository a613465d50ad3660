package builtins_test

import (
	"net/http"
	"strings"
	"testing"
)

// With an allow-list, http.* reaches only the hosts on it, also through a
// redirect; the message names the list and its setting.
func TestHTTPAllowList(t *testing.T) {
	other := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	srv := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/x", http.StatusFound)
			return
		}
		w.Write([]byte("{}"))
	}))
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	src := "\ndef body(ctx):\n    r = http.get(ctx.inputs[\"url\"])\n    return {\"status\": r.status}\ntask(\"t\", body)\n"
	for _, tt := range []struct {
		allow []string
		url   string
		want  string // "" : allowed
	}{
		{nil, srv.URL, ""},
		{[]string{"127.0.0.1"}, srv.URL, ""},
		{[]string{"127.0.0.1:" + port}, srv.URL, ""},
		{[]string{"127.0.0.1:1"}, srv.URL, "is not on the http allow-list"},
		{[]string{"api.example.com", "*.example.org"}, srv.URL, "is not on the http allow-list (api.example.com, *.example.org; set with $FLOWSCRIPT_HTTP_ALLOW"},
		{[]string{"127.0.0.1"}, srv.URL + "/away", "redirect"},
	} {
		sc := newStep(t, "t", nil)
		sc.Inputs = map[string]any{"url": tt.url}
		sc.HTTPAllow = tt.allow
		out, err := runOne(t, src, sc)
		switch {
		case tt.want == "" && (err != nil || out["status"] != int64(200)):
			t.Errorf("allow %v, %s: %v, %v; want it allowed", tt.allow, tt.url, out, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("allow %v, %s: %v; want %q", tt.allow, tt.url, err, tt.want)
		}
	}
}

func TestHostAllowedWildcards(t *testing.T) {
	// *.example.org allows subdomains, not example.org itself nor
	// evil-example.org
	src := "\ndef body(ctx):\n    http.get(ctx.inputs[\"url\"])\ntask(\"t\", body)\n"
	for _, url := range []string{"https://example.org/", "https://evilexample.org/", "https://example.org.evil.com/"} {
		sc := newStep(t, "t", nil)
		sc.Inputs = map[string]any{"url": url}
		sc.HTTPAllow = []string{"*.example.org"}
		if _, err := runOne(t, src, sc); err == nil || !strings.Contains(err.Error(), "allow-list") {
			t.Errorf("%s: %v; want it refused", url, err)
		}
	}
}
