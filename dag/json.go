package dag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// DecodeJSON decodes one JSON value as workflow data: whole numbers
// become int64 (as Starlark ints do), other numbers float64.
func DecodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("more than one JSON value")
	}
	if err := checkIntegers(v); err != nil {
		return nil, err
	}
	return NormalizeNumbers(v), nil
}

// checkIntegers refuses an integer literal that does not fit in 64 bits:
// as a float it would lose digits.
func checkIntegers(v any) error {
	switch v := v.(type) {
	case json.Number:
		if _, err := v.Int64(); err != nil && !strings.ContainsAny(v.String(), ".eE") {
			return fmt.Errorf("integer %s does not fit in 64 bits", v)
		}
	case []any:
		for _, e := range v {
			if err := checkIntegers(e); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, e := range v {
			if err := checkIntegers(e); err != nil {
				return err
			}
		}
	}
	return nil
}

// NormalizeNumbers turns the numbers of decoded JSON (json.Number, or
// float64 from a plain decode) into int64 where they are whole, in place
// for lists and maps, and returns the value.
func NormalizeNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return NormalizeNumbers(f) // 1e3 is the whole number 1000
	case float64:
		if v == float64(int64(v)) && v >= -(1<<53) && v <= 1<<53 {
			return int64(v)
		}
	case []any:
		for i, e := range v {
			v[i] = NormalizeNumbers(e)
		}
	case map[string]any:
		for k, e := range v {
			v[k] = NormalizeNumbers(e)
		}
	}
	return v
}
