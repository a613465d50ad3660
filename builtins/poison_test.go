package builtins_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/flowscript/flowscript/builtins"
)

// Poison pills: bodies that once killed the engine (a Go out-of-memory
// crash, a stack overflow) or hung their run must fail their step with a
// message that names the limit.

func TestPoisonCollectionsRefusedBeforeTheyAreBuilt(t *testing.T) {
	for _, expr := range []string{
		"list(range(1 << 40))",
		"tuple(range(1 << 40))",
		"sorted(range(1 << 40))",
		"enumerate(range(1 << 40))",
		"set(range(1 << 40))",
		"dict(zip(range(1 << 40), range(1 << 40)))",
		"max(range(1 << 40))",
	} {
		t.Run(expr, func(t *testing.T) {
			src := "def b(ctx):\n    x = " + expr + "\n    return {}\nworkflow(name = \"w\")\ntask(\"t\", b)\n"
			_, err := runOne(t, src, newStep(t, "t", nil))
			if err == nil || !strings.Contains(err.Error(), "more than the limit of 10000000") || !strings.Contains(err.Error(), "main.star:2:") {
				t.Fatalf("got %v, want the collection limit at main.star:2", err)
			}
		})
	}
}

func TestPoisonGrowingStringStoppedByMemoryLimit(t *testing.T) {
	src := "def b(ctx):\n    s = \"x\"\n    for i in range(64):\n        s = s + s\n    return {\"n\": len(s)}\nworkflow(name = \"w\")\ntask(\"t\", b)\n"
	sc := newStep(t, "t", nil)
	sc.MaxMemory = 64 << 20
	_, err := runOne(t, src, sc)
	if !errors.Is(err, builtins.ErrTooMuchMemory) {
		t.Fatalf("got %v, want the memory limit", err)
	}
	if !strings.Contains(err.Error(), "64 MiB") || !strings.Contains(err.Error(), builtins.MaxStepMemoryEnv) {
		t.Fatalf("message %q does not name the limit and its setting", err)
	}
}

func TestPoisonDeepValuesRefusedWhereTheyLeaveTheBody(t *testing.T) {
	for name, build := range map[string]string{
		"list 1,000,000 deep": "x = []\n    for i in range(1000000):\n        x = [x]",
		"dict 20,000 deep":    "x = {}\n    for i in range(20000):\n        x = {\"a\": x}",
	} {
		t.Run(name, func(t *testing.T) {
			src := "def b(ctx):\n    " + build + "\n    return {\"x\": x}\nworkflow(name = \"w\")\ntask(\"t\", b)\n"
			_, err := runOne(t, src, newStep(t, "t", nil))
			if err == nil || !strings.Contains(err.Error(), "nested more than 1000 deep") {
				t.Fatalf("got %v, want the depth limit", err)
			}
		})
	}
}

func TestValuesWithinTheDepthLimitAreKept(t *testing.T) {
	src := "def b(ctx):\n    x = 1\n    for i in range(999):\n        x = [x]\n    return {\"x\": x}\nworkflow(name = \"w\")\ntask(\"t\", b)\n"
	out, err := runOne(t, src, newStep(t, "t", nil))
	if err != nil || out["x"] == nil {
		t.Fatalf("got %v, %v", out, err)
	}
}

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]uint64{"1024": 1024, "64KiB": 64 << 10, "512MiB": 512 << 20, "2GiB": 2 << 30, " 3 MiB ": 3 << 20} {
		if got, ok := builtins.ParseByteSize(in); !ok || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1TiB", "99999999999999GiB"} {
		if _, ok := builtins.ParseByteSize(in); ok {
			t.Errorf("ParseByteSize(%q) accepted", in)
		}
	}
}
