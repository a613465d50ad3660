package builtins

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"sync"
)

// HTTPAllowEnv names the environment variable that, when no engine option
// says otherwise, restricts http.* to a comma-separated list of hosts
// ("api.example.com,*.internal.example,localhost:8080").
const HTTPAllowEnv = "FLOWSCRIPT_HTTP_ALLOW"

var envHTTPAllow = sync.OnceValue(func() []string { return ParseHostList(os.Getenv(HTTPAllowEnv)) })

// ParseHostList splits a comma-separated host list, dropping blanks.
func ParseHostList(s string) []string {
	var hosts []string
	for _, h := range strings.Split(s, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, strings.ToLower(h))
		}
	}
	return hosts
}

// errHostNotAllowed is wrapped by the error of a request to a host the
// allow-list does not name.
var errHostNotAllowed = errors.New("host not allowed")

// hostAllowed reports whether u's host is on allow: an entry "host"
// allows that host on any port, "host:port" that port only, "*.domain"
// every host under domain. An empty list allows every host.
func hostAllowed(allow []string, u *neturl.URL) bool {
	if len(allow) == 0 {
		return true
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	for _, a := range allow {
		h, p := a, ""
		if hh, pp, err := net.SplitHostPort(a); err == nil {
			h, p = hh, pp
		}
		if p != "" && p != port {
			continue
		}
		if h == host || (strings.HasPrefix(h, "*.") && strings.HasSuffix(host, h[1:])) {
			return true
		}
	}
	return false
}

func (sc *StepContext) httpAllow() []string {
	if sc.HTTPAllow != nil {
		return sc.HTTPAllow
	}
	return envHTTPAllow()
}

func notAllowed(name string, u *neturl.URL, allow []string) error {
	return fmt.Errorf("%s %s: %w: %s is not on the http allow-list (%s; set with $%s or the engine's HTTPAllowHosts)", name, redact(u), errHostNotAllowed, u.Host, strings.Join(allow, ", "), HTTPAllowEnv)
}

// allowListClient is client with redirects checked against allow too.
func allowListClient(client *http.Client, allow []string) *http.Client {
	if len(allow) == 0 {
		return client
	}
	c := *client
	prev := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !hostAllowed(allow, req.URL) {
			return notAllowed("redirect", req.URL, allow)
		}
		if prev != nil {
			return prev(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &c
}
