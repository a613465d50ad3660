package builtins_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// newLoopbackServer serves h on 127.0.0.1 only.
func newLoopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// echoHandler answers with a JSON description of the request.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("X-Multi", "a")
	w.Header().Add("X-Multi", "b")
	status := http.StatusOK
	if r.URL.Path == "/missing" {
		status = http.StatusNotFound
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"method":       r.Method,
		"path":         r.URL.Path,
		"auth":         r.Header.Get("Authorization"),
		"content_type": r.Header.Get("Content-Type"),
		"body":         string(body),
	})
}

func TestHTTP(t *testing.T) {
	srv := newLoopbackServer(t, http.HandlerFunc(echoHandler))
	src := `
def body(ctx):
    base = ctx.inputs["base"]
    g = http.get(base + "/items", headers = {"Authorization": "Bearer abc"})
    p = http.post(base + "/items", json = {"name": "x", "n": [1, 2]})
    u = http.put(base + "/items/1", body = "raw text")
    d = http.delete(base + "/items/1")
    m = http.get(base + "/missing")
    return {
        "get": g.json(), "status": g.status, "ctype": g.headers["content-type"], "multi": g.headers["x-multi"],
        "post": p.json(), "put": u.json()["body"], "delete": d.json()["method"],
        "missing": m.status, "missing_path": json.decode(m.body)["path"], "str": str(m),
    }
task("t", body)
`
	sc := newStep(t, "t", nil)
	sc.Inputs = map[string]any{"base": srv.URL}
	out, err := runOne(t, src, sc)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"get":    map[string]any{"method": "GET", "path": "/items", "auth": "Bearer abc", "content_type": "", "body": ""},
		"status": int64(200), "ctype": "application/json", "multi": "a, b",
		"post": map[string]any{"method": "POST", "path": "/items", "auth": "", "content_type": "application/json", "body": `{"n":[1,2],"name":"x"}`},
		"put":  "raw text", "delete": "DELETE",
		"missing": int64(404), "missing_path": "/missing", "str": "<http.response 404>",
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("out\n got %#v\nwant %#v", out, want)
	}
}

func TestHTTPErrors(t *testing.T) {
	srv := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/text":
			io.WriteString(w, "not json")
		case "/huge":
			chunk := strings.Repeat("x", 1<<20)
			for i := 0; i < 11; i++ {
				io.WriteString(w, chunk)
			}
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}))
	tests := []struct{ call, want string }{
		{`http.get(base + "/text").json()`, "main.star:4:38: response.json: the body (status 200) is not JSON"},
		{`http.get(base + "/huge")`, "main.star:4:17: http.get " + srv.URL + "/huge: the response body is larger than the limit of 10 MiB"},
		{`http.get(base + "/slow", timeout = "100ms")`, "main.star:4:17: http.get " + srv.URL + "/slow: timed out after 100ms"},
		{`http.post(base, json = {}, body = "x")`, "main.star:4:18: http.post: give json= or body=, not both"},
		{`http.get("ftp://example.com/x")`, `main.star:4:17: http.get: "ftp://example.com/x" is not an http:// or https:// URL`},
		{`http.get(base, headers = {"X": []})`, `main.star:4:17: http.get: headers["X"] must be a string, got list`},
	}
	for _, tt := range tests {
		src := "\ndef body(ctx):\n    base = ctx.inputs[\"base\"]\n    r = " + tt.call + "\ntask(\"t\", body)\n"
		sc := newStep(t, "t", nil)
		sc.Inputs = map[string]any{"base": srv.URL}
		_, err := runOne(t, src, sc)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s:\n err = %v\nwant %s...", tt.call, err, tt.want)
		}
	}
}

func TestHTTPCancelledByStep(t *testing.T) {
	started := make(chan struct{})
	srv := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	src := `
def body(ctx):
    http.get(ctx.inputs["url"])
task("t", body)
`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := newStep(t, "t", nil)
	sc.Context = ctx
	sc.Inputs = map[string]any{"url": srv.URL}
	sc.HTTPClient = srv.Client()
	go func() { <-started; cancel() }()
	_, err := runOne(t, src, sc)
	if err == nil || err.Error() != "main.star:3:13: step cancelled" || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
