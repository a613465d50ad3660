package lang_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/diff"
	"golang.org/x/tools/txtar"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
)

// The golden tests live in testdata/golden/*.txtar at the repository root.
// Each archive is one scenario: its files make a workspace, its root script
// (main.star unless the header says otherwise) is loaded and checked the way
// `flowscript validate` does, and the result is compared with the archive's
// "want" section:
//
//   - when there are errors, one line per error, file:line:col: message,
//     sorted, with positions relative to the workspace;
//   - otherwise dag.RenderText followed by dag.RenderJSON, the children
//     nested as `graph --expand` does when the header says "expand".
//
// The header (the archive's comment) holds one directive a line:
//
//	# free text describing the scenario
//	root: pipeline.star                 the root script
//	expand                              nest static children in the output
//	max_steps: 100000                   lang.Options.MaxSteps
//	symlink: sub/x.star -> TARGET       make a symbolic link before loading;
//	                                    $OUTSIDE in TARGET names a directory
//	                                    outside the workspace
//
// Files named outside/NAME are written to that outside directory instead of
// the workspace. In messages, the workspace's absolute path reads $WORK and
// the outside directory's reads $OUTSIDE.
//
// FLOWSCRIPT_UPDATE=1 go test ./lang -run Golden rewrites every "want"
// section from what the code does now; review the diff like code.

const goldenDir = "../testdata/golden"

func TestGolden(t *testing.T) {
	dir, err := filepath.Abs(goldenDir) // the cases chdir into their workspaces
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no golden cases in %s", goldenDir)
	}
	v := os.Getenv("FLOWSCRIPT_UPDATE")
	update := v != "" && v != "0" && v != "false"
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			runGolden(t, file, update)
		})
	}
}

// goldenCase is what an archive's header asks for.
type goldenCase struct {
	root     string
	expand   bool
	maxSteps uint64
	symlinks [][2]string // link, target
}

func parseHeader(t *testing.T, comment []byte) goldenCase {
	t.Helper()
	gc := goldenCase{root: "main.star"}
	for i, line := range strings.Split(string(comment), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, _ := strings.Cut(line, ":")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "root":
			gc.root = value
		case "expand":
			gc.expand = true
		case "max_steps":
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				t.Fatalf("header line %d: max_steps: %v", i+1, err)
			}
			gc.maxSteps = n
		case "symlink":
			link, target, ok := strings.Cut(value, "->")
			if !ok {
				t.Fatalf("header line %d: want symlink: LINK -> TARGET", i+1)
			}
			gc.symlinks = append(gc.symlinks, [2]string{strings.TrimSpace(link), strings.TrimSpace(target)})
		default:
			t.Fatalf("header line %d: unknown directive %q (want root:, expand, max_steps: or symlink:, or a # comment)", i+1, line)
		}
	}
	return gc
}

func runGolden(t *testing.T, file string, update bool) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	gc := parseHeader(t, ar.Comment)

	base := t.TempDir()
	work := filepath.Join(base, "ws")
	outside := filepath.Join(base, "outside")
	for _, dir := range []string{work, outside} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	wantIndex := -1
	for i, f := range ar.Files {
		if f.Name == "want" {
			wantIndex = i
			continue
		}
		dst := filepath.Join(work, filepath.FromSlash(f.Name))
		if rest, ok := strings.CutPrefix(f.Name, "outside/"); ok {
			dst = filepath.Join(outside, filepath.FromSlash(rest))
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range gc.symlinks {
		link := filepath.Join(work, filepath.FromSlash(l[0]))
		target := strings.ReplaceAll(l[1], "$OUTSIDE", outside)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Skipf("cannot make symbolic links here: %v", err)
		}
	}

	// Run from inside the workspace, as `flowscript validate main.star`
	// does, so that positions name files relative to it.
	t.Chdir(work)
	got := goldenOutput(t, gc)
	for dir, name := range map[string]string{work: "$WORK", outside: "$OUTSIDE"} {
		if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
			got = strings.ReplaceAll(got, real, name)
		}
		got = strings.ReplaceAll(got, dir, name)
	}

	if update {
		want := txtar.File{Name: "want", Data: []byte(got)}
		if wantIndex >= 0 {
			ar.Files[wantIndex] = want
		} else {
			ar.Files = append(ar.Files, want)
		}
		data := txtar.Format(ar)
		if old, err := os.ReadFile(file); err == nil && bytes.Equal(old, data) {
			return
		}
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", file)
		return
	}
	if wantIndex < 0 {
		t.Fatalf("%s has no -- want -- section; run with FLOWSCRIPT_UPDATE=1 to write it", file)
	}
	want := string(ar.Files[wantIndex].Data)
	if got != want {
		t.Errorf("%s: output differs from the want section (rerun with FLOWSCRIPT_UPDATE=1 to accept)\n%s",
			file, diff.Diff("want", []byte(want), "got", []byte(got)))
	}
}

// goldenOutput loads and checks the root script in the current directory's
// workspace and renders what `flowscript validate` and `graph` would show.
func goldenOutput(t *testing.T, gc goldenCase) string {
	t.Helper()
	ctx := context.Background()
	ws, err := lang.OpenWorkspace(".", lang.Options{MaxSteps: gc.maxSteps})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := ws.Load(ctx, gc.root)
	var errs dag.ErrorList
	switch {
	case errors.As(err, &errs):
	case err != nil:
		return "error: " + err.Error() + "\n"
	default:
		errs = ws.Check(ctx, prog)
	}
	if len(errs) > 0 {
		if prog == nil && err == nil {
			t.Fatal("no program and no error")
		}
		errs.Sort()
		var b strings.Builder
		for _, e := range errs {
			if e.Pos.File == "" {
				t.Errorf("error without a position: %s", e.Msg)
			}
			fmt.Fprintln(&b, e.Error())
		}
		return b.String()
	}

	var opts dag.RenderOptions
	if gc.expand {
		// as `flowscript graph --expand` does
		limit := prog.Workflow.EffectiveMaxDepth()
		opts.Expand = func(s *dag.Step, depth int) *dag.Workflow {
			if depth > limit {
				return nil
			}
			child, err := ws.Resolve(ctx, s.Child.Name, s.Child.Version)
			if err != nil {
				t.Errorf("expand %s: %v", s.ID, err)
				return nil
			}
			return child.Workflow
		}
	}
	var out bytes.Buffer
	if err := dag.RenderText(&out, prog.Workflow, opts); err != nil {
		t.Fatalf("RenderText: %v", err)
	}
	if err := dag.RenderJSON(&out, prog.Workflow, opts); err != nil {
		t.Fatalf("RenderJSON: %v", err)
	}
	return out.String()
}
