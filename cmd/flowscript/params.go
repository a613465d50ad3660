package main

import (
	"bufio"
	"bytes"
	"os"
	"strings"

	"github.com/flowscript/flowscript/dag"
)

// parseParams merges --params-file (a JSON object) and --param k=v flags,
// the flags winning. A value is JSON where it parses (whole numbers as
// ints), else the string as written.
func parseParams(file string, flags []string) (map[string]any, error) {
	params := map[string]any{}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErrorf("flowscript: --params-file: %v", unwrapPath(err))
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, usageErrorf("flowscript: --params-file %s is empty; it must hold a JSON object of param names to values", file)
		}
		v, err := dag.DecodeJSON(data)
		if err != nil {
			return nil, usageErrorf("flowscript: --params-file %s is not valid JSON: %v", file, err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, usageErrorf("flowscript: --params-file %s must hold a JSON object of param names to values", file)
		}
		for k, v := range obj {
			params[k] = v
		}
	}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usageErrorf("flowscript: --param %q: write it as name=value", f)
		}
		if decoded, err := dag.DecodeJSON([]byte(v)); err == nil {
			params[k] = decoded
		} else {
			params[k] = v
		}
	}
	return params, nil
}

// readSecretsFile reads NAME=value lines; blank lines and # comments are
// skipped. The values never leave memory.
func readSecretsFile(file string) (map[string]string, error) {
	if file == "" {
		return nil, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, usageErrorf("flowscript: --secrets-file: %v", unwrapPath(err))
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(strings.TrimPrefix(k, "export "))
		if !ok || k == "" {
			// never echo the line: it may hold a secret
			return nil, usageErrorf("flowscript: %s:%d: want NAME=value", file, n)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, usageErrorf("flowscript: --secrets-file %s: %v", file, err)
	}
	return out, nil
}
