package core_test

import (
	"testing"

	"github.com/flowscript/flowscript/runtime/core"
)

// BenchmarkStartFanout10k: the decision that starts a run of 10,000
// independent steps with an engine that admits steps (half of them find a
// worker).
func BenchmarkStartFanout10k(b *testing.B) {
	w := declare(b, "fan = [task(\"f%d\" % i, f) for i in range(10000)]\n")
	b.ReportAllocs()
	for range b.N {
		m := core.New(w, &core.Run{ID: "r"})
		m.Pooled = true
		res := m.Apply(core.Start{At: t0}, core.Inputs{Free: 5000})
		if len(res.Actions) != 10000 {
			b.Fatalf("%d actions", len(res.Actions))
		}
	}
}
