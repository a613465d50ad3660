package main

import "fmt"

// plural writes a count with its noun, in the singular for one:
// plural(1, "step") is "1 step", plural(3, "child run") "3 child runs",
// plural(2, "child") "2 children".
func plural(n int, noun string) string {
	return fmt.Sprintf("%d %s", n, nounFor(n, noun))
}

// nounFor is the noun alone, singular for one.
func nounFor(n int, noun string) string {
	switch {
	case n == 1:
		return noun
	case noun == "child" || len(noun) > 6 && noun[len(noun)-6:] == " child":
		return noun + "ren"
	}
	return noun + "s"
}
