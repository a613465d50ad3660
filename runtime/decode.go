package runtime

import (
	"bytes"
	"encoding/json"
)

// decodeJSON decodes stored data with whole numbers as int64, so that
// values read back equal the values that were written.
func decodeJSON(data []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	*v = normalizeNumbers(*v)
	return nil
}

func normalizeNumbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i, e := range v {
			v[i] = normalizeNumbers(e)
		}
	case map[string]any:
		for k, e := range v {
			v[k] = normalizeNumbers(e)
		}
	}
	return v
}
