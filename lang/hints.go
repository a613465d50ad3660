package lang

import "strings"

// referenceHint explains an operation that only a value supports
// (iterating, comparing, indexing, ...) done on a reference at
// declaration, where param(), secret() and step outputs are references to
// values that exist only once the run starts. It returns msg unchanged
// when msg is about something else.
func referenceHint(msg string) string {
	misuse := strings.Contains(msg, "reference value is not iterable") ||
		strings.Contains(msg, "unhashable type: reference") ||
		strings.Contains(msg, "reference has no ") ||
		strings.Contains(msg, "reference value does not support") ||
		(strings.HasSuffix(msg, " not implemented") && strings.Contains(msg, "reference")) // "reference > int not implemented"
	if !misuse {
		return msg
	}
	return msg + ": param(), secret() and step outputs are references while the workflow is declared, " +
		"their values known only when the run starts; use the value in a step body " +
		"(ctx.params[\"name\"]) or decide the steps in a planner"
}
