package dag

import "testing"

// The priority range and the idempotency strategies are defined once;
// these pin the predicates and texts every other package takes from them.
func TestPriorityInRange(t *testing.T) {
	for n, want := range map[int64]bool{MinPriority - 1: false, MinPriority: true, 50: true, MaxPriority: true, MaxPriority + 1: false} {
		if got := PriorityInRange(n); got != want {
			t.Errorf("PriorityInRange(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestIdempotencyStrategies(t *testing.T) {
	if IdempotencyStrategies[0] != ReturnExisting {
		t.Fatalf("the default must come first: %v", IdempotencyStrategies)
	}
	for _, s := range IdempotencyStrategies {
		if !IsIdempotencyStrategy(s) || StrategyMeaning(s) == "" {
			t.Errorf("strategy %q: valid %v, meaning %q", s, IsIdempotencyStrategy(s), StrategyMeaning(s))
		}
	}
	for _, s := range []string{"", "return-existing", "FAIL"} {
		if IsIdempotencyStrategy(s) || StrategyMeaning(s) != "" {
			t.Errorf("%q is not a strategy", s)
		}
	}
	if got := StrategyList(); got != "return_existing, fail, fail_on_running" {
		t.Errorf("StrategyList() = %q", got)
	}
}
