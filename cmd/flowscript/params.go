package main

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/flowscript/flowscript"
	"io"
	"math"
	"os"
	"regexp"
	"strings"

	"github.com/joho/godotenv"
)

// maxParamsFile bounds what --params-file reads.
const maxParamsFile = 16 << 20

// paramInput is what --params-file and --param gave, before the
// workflow's declared defaults say how to read each --param value.
type paramInput struct {
	file  map[string]any
	flags []paramFlag
}

type paramFlag struct{ name, value string }

// parseParams reads --params-file (a JSON object, at most 16 MiB) and
// splits each --param k=v at its first "=".
func parseParams(file string, flags []string) (*paramInput, error) {
	in := &paramInput{file: map[string]any{}}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, usageErrorf("flowscript: --params-file: %v", unwrapPath(err))
		}
		data, err := io.ReadAll(io.LimitReader(f, maxParamsFile+1))
		f.Close()
		if err != nil {
			return nil, usageErrorf("flowscript: --params-file %s: %v", file, unwrapPath(err))
		}
		if len(data) > maxParamsFile {
			return nil, usageErrorf("flowscript: --params-file %s is larger than %d MiB, the most it may hold", file, maxParamsFile>>20)
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, usageErrorf("flowscript: --params-file %s is empty; it must hold a JSON object of param names to values", file)
		}
		v, err := flowscript.DecodeJSON(data)
		if err != nil {
			return nil, usageErrorf("flowscript: --params-file %s is not valid JSON: %v", file, err)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, usageErrorf("flowscript: --params-file %s must hold a JSON object of param names to values", file)
		}
		if err := finite(obj); err != nil {
			return nil, usageErrorf("flowscript: --params-file %s: %v", file, err)
		}
		in.file = obj
	}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k == "" {
			return nil, usageErrorf("flowscript: --param %q: write it as name=value", f)
		}
		in.flags = append(in.flags, paramFlag{k, v})
	}
	return in, nil
}

// typed merges the params, --param over --params-file, reading each
// --param value by the type of the param's declared default (SPEC §7
// Command line): a string default keeps the value as given, an int
// default takes whole numbers, a float, bool, list or dict default takes
// JSON of that type; a default of None, or an undeclared param (which
// the engine refuses by name), takes JSON where it parses, else the
// string. declared holds the workflow's params with their defaults
// (Program.Params).
func (in *paramInput) typed(declared map[string]any) (map[string]any, error) {
	params := make(map[string]any, len(in.file)+len(in.flags))
	for k, v := range in.file {
		params[k] = v
	}
	for _, f := range in.flags {
		def := declared[f.name]
		v, err := paramValue(f.value, def)
		if err != nil {
			detail := hintFor(def)
			if err.Error() != "" {
				detail = ": " + err.Error()
			}
			return nil, usageErrorf("flowscript: --param %s=%s: %s is %s (default %s)%s", f.name, f.value, f.name, typeName(def), flowscript.FormatValue(def), detail)
		}
		params[f.name] = v
	}
	return params, nil
}

// paramValue reads one --param value for a param whose default is def;
// the error names the type expected.
func paramValue(raw string, def any) (any, error) {
	if _, ok := def.(string); ok {
		return raw, nil
	}
	decoded, jerr := flowscript.DecodeJSON([]byte(raw))
	if jerr == nil {
		if err := finite(decoded); err != nil {
			return nil, fmt.Errorf("the value %v", err)
		}
	}
	switch def.(type) {
	case nil:
		if jerr != nil {
			return raw, nil
		}
		return decoded, nil
	case int64:
		if n, ok := decoded.(int64); ok && jerr == nil {
			return n, nil
		}
	case float64:
		switch n := decoded.(type) {
		case float64:
			return n, nil
		case int64:
			return float64(n), nil
		}
	case bool:
		if b, ok := decoded.(bool); ok && jerr == nil {
			return b, nil
		}
	case []any:
		if l, ok := decoded.([]any); ok && jerr == nil {
			return l, nil
		}
	case map[string]any:
		if m, ok := decoded.(map[string]any); ok && jerr == nil {
			return m, nil
		}
	}
	if jerr != nil && strings.ContainsAny(raw[:min(1, len(raw))], "-0123456789") {
		switch def.(type) {
		case int64, float64:
			return nil, jerr
		}
	}
	return nil, errNotOfType
}

// errNotOfType: the value is not of the default's type; the message says
// what to give.
var errNotOfType = errors.New("")

func typeName(def any) string {
	switch def.(type) {
	case int64:
		return "an int"
	case float64:
		return "a float"
	case bool:
		return "a bool"
	case []any:
		return "a list"
	case map[string]any:
		return "a dict"
	case string:
		return "a string"
	}
	return "any JSON value"
}

func hintFor(def any) string {
	switch def.(type) {
	case int64:
		return ": give a whole number"
	case float64:
		return ": give a number"
	case bool:
		return ": give true or false"
	case []any:
		return ": give a JSON list, e.g. [1, 2]"
	case map[string]any:
		return `: give a JSON object, e.g. {"k": 1}`
	}
	return ""
}

// finite refuses numbers JSON can read but not write back (1e400 is
// +Inf).
func finite(v any) error {
	switch x := v.(type) {
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return fmt.Errorf("is out of range for a 64-bit number")
		}
	case []any:
		for _, e := range x {
			if err := finite(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range x {
			if err := finite(e); err != nil {
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
