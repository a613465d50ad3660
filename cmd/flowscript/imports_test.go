package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// testOnlyImports are the module packages this directory's tests may use
// besides the root (helpers with no API of their own).
var testOnlyImports = map[string]bool{"internal/testio": true}

// TestCLIImportsOnlyTheRoot: the CLI is built on the public API alone.
// Every non-test Go file of cmd/flowscript (whatever its build tags)
// imports no package of the module but the root package; test files
// import only the root and testOnlyImports.
func TestCLIImportsOnlyTheRoot(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var module string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			module = strings.Trim(strings.TrimSpace(rest), `"`)
			break
		}
	}
	if module == "" {
		t.Fatal("no module path in ../../go.mod")
	}
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files here: %v", err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		isTest := strings.HasSuffix(file, "_test.go")
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if path == module || !strings.HasPrefix(path, module+"/") {
				continue
			}
			if isTest && testOnlyImports[strings.TrimPrefix(path, module+"/")] {
				continue
			}
			t.Errorf("%s imports %s: the CLI may import only %s (add what it needs to the root package)", fset.Position(imp.Pos()), path, module)
		}
		if !isTest {
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no non-test Go files were checked")
	}
}
