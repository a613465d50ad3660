package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"strings"

	"github.com/flowscript/flowscript/dag"
	"github.com/joho/godotenv"
)

// maxParamsFileBytes caps --params-file: it is read whole into memory
// (so --params-file /dev/zero is refused, not read forever).
const maxParamsFileBytes = 16 << 20

// paramInput is what --params-file and --param gave, before the
// workflow's declared defaults say how to read each --param value.
type paramInput struct {
	file  map[string]any // the JSON object of --params-file
	flags [][2]string    // --param name=value, as written, in order
}

// readParams reads --params-file (a JSON object) and splits the --param
// name=value flags.
func readParams(file string, flags []string) (*paramInput, error) {
	in := &paramInput{file: map[string]any{}}
	if file != "" {
		data, err := readCapped(file, maxParamsFileBytes)
		if err != nil {
			return nil, usageErrorf("flowscript: --params-file: %v", err)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, usageErrorf("flowscript: --params-file %s is empty; it must hold a JSON object of param names to values", file)
		}
		v, err := dag.DecodeJSON(data)
		if err == nil {
			err = checkFinite(v)
		}
		if err != nil {
			return nil, usageErrorf("flowscript: --params-file %s is not valid JSON: %v", file, err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, usageErrorf("flowscript: --params-file %s must hold a JSON object of param names to values", file)
		}
		in.file = obj
	}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usageErrorf("flowscript: --param %q: write it as name=value", f)
		}
		in.flags = append(in.flags, [2]string{k, v})
	}
	return in, nil
}

// typed gives the params of a run of w: --params-file's values, then
// each --param read by the type of its param's declared default (SPEC §7
// Command line). A param w does not declare is left for the start to
// refuse.
func (in *paramInput) typed(w *dag.Workflow) (map[string]any, error) {
	params := map[string]any{}
	for k, v := range in.file {
		params[k] = v
	}
	for _, kv := range in.flags {
		name, raw := kv[0], kv[1]
		var def any
		declared := false
		for _, p := range w.Params {
			if p.Name == name {
				def, declared = p.Default, true
			}
		}
		v, err := paramValue(name, raw, def, declared)
		if err != nil {
			return nil, usageErrorf("flowscript: --param %s=%s: %v", name, raw, err)
		}
		params[name] = v
	}
	return params, nil
}

// paramValue reads one --param value by the type of def.
func paramValue(name, raw string, def any, declared bool) (any, error) {
	decoded, jsonErr := dag.DecodeJSON([]byte(raw))
	if jsonErr == nil {
		jsonErr = checkFinite(decoded)
	}
	if !declared || def == nil {
		if jsonErr != nil {
			if looksNumeric(raw) {
				return nil, jsonErr
			}
			return raw, nil
		}
		return decoded, nil
	}
	want := ""
	ok := false
	switch def.(type) {
	case string:
		return raw, nil // the exact string given: 1.10 stays "1.10"
	case int64, int:
		want = "an int"
		_, ok = decoded.(int64)
	case float64:
		want = "a float"
		switch decoded.(type) {
		case int64, float64:
			ok = true
		}
	case bool:
		want = "a bool (true or false)"
		_, ok = decoded.(bool)
	case []any:
		want = "a list (JSON, such as [1, 2])"
		_, ok = decoded.([]any)
	case map[string]any:
		want = "a dict (a JSON object)"
		_, ok = decoded.(map[string]any)
	default:
		if jsonErr != nil {
			return raw, nil
		}
		return decoded, nil
	}
	if jsonErr != nil && looksNumeric(raw) {
		return nil, jsonErr
	}
	if !ok || jsonErr != nil {
		return nil, fmt.Errorf("%s is %s (default %s)", name, want, dag.FormatValue(def))
	}
	return decoded, nil
}

var numericRE = regexp.MustCompile(`^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$`)

func looksNumeric(s string) bool { return numericRE.MatchString(s) }

// checkFinite refuses numbers that JSON can write but a float cannot
// hold (1e400), which would otherwise become infinities.
func checkFinite(v any) error {
	switch v := v.(type) {
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return fmt.Errorf("the number is out of range (a float holds up to about 1.8e308)")
		}
	case []any:
		for _, e := range v {
			if err := checkFinite(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range v {
			if err := checkFinite(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// readCapped reads a whole file of at most max bytes.
func readCapped(file string, max int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, unwrapPath(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, unwrapPath(err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d MiB, the limit for this file", file, max>>20)
	}
	return data, nil
}

// maxSecretsFileBytes caps a secrets file: it is read whole into memory.
const maxSecretsFileBytes = 1 << 20

// readSecretsFile reads a secrets file in dotenv syntax: NAME=value lines,
// an optional "export ", # comments, single- or double-quoted values (the
// quotes are not part of the value). The values never leave memory, and
// no error message quotes the file's text.
func readSecretsFile(file string) (map[string]string, error) {
	if file == "" {
		return nil, nil
	}
	data, err := readCapped(file, maxSecretsFileBytes)
	if err != nil {
		return nil, usageErrorf("flowscript: --secrets-file: %v", err)
	}
	out, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		what := "is not in dotenv syntax"
		switch {
		case strings.HasPrefix(err.Error(), "unterminated quoted value"):
			what = "has a quoted value that is not closed"
		case strings.HasPrefix(err.Error(), "unexpected character"):
			what = "has a line that is not NAME=value"
			if n := badDotenvLine(data); n > 0 {
				return nil, usageErrorf("flowscript: %s:%d: want NAME=value (dotenv syntax)", file, n)
			}
		}
		return nil, usageErrorf("flowscript: --secrets-file %s %s (want NAME=value lines, values optionally quoted)", file, what)
	}
	return out, nil
}

var dotenvLineRE = regexp.MustCompile(`^\s*(export\s+)?[A-Za-z0-9_.]+\s*[=:]`)

// badDotenvLine finds the first line that does not start a NAME=value
// entry, outside quoted values; 0 when there is none.
func badDotenvLine(data []byte) int {
	inQuote := byte(0)
	for i, line := range strings.Split(string(data), "\n") {
		if inQuote != 0 {
			if strings.IndexByte(line, inQuote) >= 0 {
				inQuote = 0
			}
			continue
		}
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if !dotenvLineRE.MatchString(line) {
			return i + 1
		}
		_, v, _ := strings.Cut(line, "=")
		v = strings.TrimSpace(v)
		if len(v) > 0 && (v[0] == '"' || v[0] == '\'') && strings.IndexByte(v[1:], v[0]) < 0 {
			inQuote = v[0]
		}
	}
	return 0
}
