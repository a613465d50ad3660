package runtime

import "time"

func optString(s string) *string {
	if s == "" {
		return nil
	}
	p := new(string) // not &s: that moves s to the heap even when empty
	*p = s
	return p
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// deref is *s, or "" for nil.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func fromOptTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
