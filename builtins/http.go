package builtins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"sort"
	"strings"
	"time"

	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
)

// MaxHTTPResponseBytes caps the body of a response to http.*.
const MaxHTTPResponseBytes = 10 << 20

// defaultHTTPClient serves steps whose StepContext has no HTTPClient.
var defaultHTTPClient = &http.Client{Timeout: 60 * time.Second}

// httpFn is http.get/post/put/delete(url, headers={}, json=None, body=None,
// timeout=None): one request under the step's context. A non-2xx status is
// not an error; the response is struct-like: status, headers, body, json().
func httpFn(method string) runTimeFunc {
	return func(thread *starlark.Thread, sc *StepContext, name string, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var (
			rawURL  string
			headers starlark.Value = starlark.None
			jsonV   starlark.Value = starlark.None
			body    starlark.Value = starlark.None
			timeout starlark.Value = starlark.None
		)
		if err := starlark.UnpackArgs(name, args, kwargs, "url", &rawURL, "headers?", &headers, "json?", &jsonV, "body?", &body, "timeout?", &timeout); err != nil {
			return nil, err
		}
		u, err := neturl.Parse(rawURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%s: %q is not an http:// or https:// URL", name, rawURL)
		}
		allow := sc.httpAllow()
		if !hostAllowed(allow, u) {
			return nil, notAllowed(name, u, allow)
		}
		hdrs, err := headersArg(name, headers)
		if err != nil {
			return nil, err
		}
		var (
			payload     io.Reader
			contentType string
		)
		switch {
		case jsonV != starlark.None && body != starlark.None:
			return nil, fmt.Errorf("%s: give json= or body=, not both", name)
		case jsonV != starlark.None:
			enc, err := starlark.Call(thread, json.Module.Members["encode"], starlark.Tuple{jsonV}, nil)
			if err != nil {
				return nil, fmt.Errorf("%s: json= cannot be encoded: %v", name, err)
			}
			s, _ := starlark.AsString(enc)
			payload, contentType = strings.NewReader(s), "application/json"
		case body != starlark.None:
			s, ok := starlark.AsString(body)
			if !ok {
				return nil, fmt.Errorf("%s: body must be a string, got %s", name, body.Type())
			}
			payload = strings.NewReader(s)
		}

		stepCtx := sc.context()
		ctx := stepCtx
		var limit time.Duration
		if timeout != starlark.None {
			if limit, err = durationArg(name, "timeout", timeout); err != nil {
				return nil, err
			}
			if limit <= 0 {
				return nil, fmt.Errorf("%s: timeout must be positive, got %s", name, limit)
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(stepCtx, limit)
			defer cancel()
		}
		req, err := http.NewRequestWithContext(ctx, method, u.String(), payload)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		for _, k := range sortedKeys(hdrs) {
			req.Header.Set(k, hdrs[k])
		}
		if contentType != "" && req.Header.Get("Content-Type") == "" {
			req.Header.Set("Content-Type", contentType)
		}
		client := sc.HTTPClient
		if client == nil {
			client = defaultHTTPClient
		}
		client = allowListClient(client, allow)
		fail := func(err error) error {
			switch {
			case stepCtx.Err() != nil:
				return fmt.Errorf("%s: %w", name, contextError("step", stepCtx))
			case ctx.Err() != nil:
				return &ctxErr{msg: fmt.Sprintf("%s %s: timed out after %s", name, redact(u), limit), err: ctx.Err()}
			}
			var ue *neturl.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("%s %s: %w", name, redact(u), err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, fail(err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(io.LimitReader(resp.Body, MaxHTTPResponseBytes+1))
		if err != nil {
			return nil, fail(err)
		}
		if len(data) > MaxHTTPResponseBytes {
			return nil, fmt.Errorf("%s %s: the response body is larger than the limit of %s", name, redact(u), byteSize(MaxHTTPResponseBytes))
		}
		return newHTTPResponse(resp, data), nil
	}
}

// redact is the URL for messages, without user:password.
func redact(u *neturl.URL) string { return u.Redacted() }

func headersArg(fn string, v starlark.Value) (map[string]string, error) {
	if v == starlark.None {
		return nil, nil
	}
	d, ok := v.(*starlark.Dict)
	if !ok {
		return nil, fmt.Errorf("%s: headers must be a dict of name to string, got %s", fn, v.Type())
	}
	out := make(map[string]string, d.Len())
	for _, item := range d.Items() {
		k, ok := starlark.AsString(item[0])
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: header names must be non-empty strings, got %s", fn, item[0])
		}
		val, ok := starlark.AsString(item[1])
		if !ok {
			switch x := item[1].(type) {
			case starlark.Int, starlark.Float, starlark.Bool:
				val = x.String()
			default:
				return nil, fmt.Errorf("%s: headers[%q] must be a string, got %s", fn, k, item[1].Type())
			}
		}
		out[k] = val
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// httpResponse is what http.* returns.
type httpResponse struct {
	status  int
	headers *starlark.Dict // lower-case names; repeated headers joined by ", "
	body    string
}

var (
	_ starlark.HasAttrs = (*httpResponse)(nil)

	httpResponseAttrs = []string{"body", "headers", "json", "status"}
)

func newHTTPResponse(resp *http.Response, body []byte) *httpResponse {
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	h := starlark.NewDict(len(names))
	for _, k := range names {
		_ = h.SetKey(starlark.String(strings.ToLower(k)), starlark.String(strings.Join(resp.Header.Values(k), ", ")))
	}
	return &httpResponse{status: resp.StatusCode, headers: h, body: string(bytes.Clone(body))}
}

func (r *httpResponse) String() string        { return fmt.Sprintf("<http.response %d>", r.status) }
func (r *httpResponse) Type() string          { return "http.response" }
func (r *httpResponse) Freeze()               { r.headers.Freeze() }
func (r *httpResponse) Truth() starlark.Bool  { return starlark.True }
func (r *httpResponse) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable: http.response") }
func (r *httpResponse) AttrNames() []string   { return httpResponseAttrs }

func (r *httpResponse) Attr(name string) (starlark.Value, error) {
	switch name {
	case "status":
		return starlark.MakeInt(r.status), nil
	case "headers":
		return r.headers, nil
	case "body":
		return starlark.String(r.body), nil
	case "json":
		return starlark.NewBuiltin("json", r.decode).BindReceiver(r), nil
	}
	return nil, nil
}

func (r *httpResponse) decode(thread *starlark.Thread, fn *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackPositionalArgs("json", args, kwargs, 0); err != nil {
		return nil, err
	}
	v, err := starlark.Call(thread, json.Module.Members["decode"], starlark.Tuple{starlark.String(r.body)}, nil)
	if err != nil {
		var ee *starlark.EvalError
		if errors.As(err, &ee) {
			err = errors.New(ee.Msg)
		}
		return nil, fmt.Errorf("response.json: the body (status %d) is not JSON: %v", r.status, err)
	}
	return v, nil
}
