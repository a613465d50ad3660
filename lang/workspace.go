package lang

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing/fstest"
)

// Workspace is the directory (or file system) that scripts live in:
// load() cannot leave it, and child workflows are found in it by name.
type Workspace struct {
	fsys    fs.FS
	display string // how positions name the workspace root; "" when relative names are used as they are
	dir     string // the absolute directory, for messages; "" for other file systems
	opts    Options

	mu       sync.Mutex
	programs map[string]*fileResult // by workspace-relative path
	index    *nameIndex
}

type fileResult struct {
	prog *Program
	err  error
}

// OpenWorkspace opens a directory as a workspace. Symbolic links that point
// outside it cannot be followed.
func OpenWorkspace(dir string, opts Options) (*Workspace, error) {
	return OpenWorkspaceAs(dir, dir, opts)
}

// OpenWorkspaceAs opens the directory dir as a workspace whose files are
// named in positions and messages under display (how the user wrote it,
// when dir was made absolute for another working directory).
func OpenWorkspaceAs(dir, display string, opts Options) (*Workspace, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("workspace %s does not exist", display)
		}
		return nil, fmt.Errorf("cannot open workspace %s: %w", display, unwrapPathError(err))
	}
	display = filepath.ToSlash(filepath.Clean(display))
	if display == "." {
		display = ""
	}
	ws := newWorkspace(root.FS(), display, opts)
	if abs, err := filepath.Abs(dir); err == nil {
		ws.dir = abs
	}
	return ws, nil
}

// NewWorkspaceFS makes a workspace of a file system, such as an embed.FS or
// an fstest.MapFS. display prefixes the file names shown in positions.
func NewWorkspaceFS(fsys fs.FS, display string, opts Options) *Workspace {
	return newWorkspace(fsys, display, opts)
}

// NewWorkspaceFiles makes an in-memory workspace from file contents keyed
// by slash-separated relative path.
func NewWorkspaceFiles(files map[string][]byte, opts Options) *Workspace {
	m := fstest.MapFS{}
	for name, data := range files {
		m[name] = &fstest.MapFile{Data: data, Mode: 0o644}
	}
	return newWorkspace(m, "", opts)
}

func newWorkspace(fsys fs.FS, display string, opts Options) *Workspace {
	return &Workspace{fsys: fsys, display: display, opts: opts.withDefaults(), programs: map[string]*fileResult{}}
}

// Display is the name positions use for a workspace-relative path.
func (ws *Workspace) Display(rel string) string {
	if ws.display == "" {
		return rel
	}
	return ws.display + "/" + rel
}

// Root names the workspace directory in messages.
func (ws *Workspace) Root() string {
	switch {
	case ws.display != "":
		return ws.display
	case ws.dir != "":
		return ws.dir
	}
	return "."
}

// Rel returns the workspace-relative path of a file given as the user named
// it (relative to the current directory, or absolute), or an error when the
// file lies outside the workspace directory dir.
func Rel(dir, file string) (string, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	absFile, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	r, err := filepath.Rel(absDir, absFile)
	if err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the workspace %s", file, dir)
	}
	return filepath.ToSlash(r), nil
}

// readFile reads a workspace file, with errors in the user's words.
func (ws *Workspace) readFile(rel string) ([]byte, error) {
	data, err := fs.ReadFile(ws.fsys, rel)
	if err == nil {
		return data, nil
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("file %s not found", ws.Display(rel))
	case isEscape(err):
		return nil, fmt.Errorf("%s is a symbolic link that points outside the workspace %s", ws.Display(rel), ws.Root())
	}
	return nil, fmt.Errorf("cannot read %s: %v", ws.Display(rel), unwrapPathError(err))
}

func isEscape(err error) bool {
	return err != nil && strings.Contains(err.Error(), "path escapes from parent")
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// resolveLoad turns a load() module string, relative to the loading file,
// into a workspace-relative path.
func (ws *Workspace) resolveLoad(fromRel, module string) (string, error) {
	if module == "" {
		return "", fmt.Errorf("empty path")
	}
	if strings.HasPrefix(module, "/") || filepath.IsAbs(module) {
		return "", fmt.Errorf("absolute paths are not allowed; write a path relative to this file")
	}
	if strings.Contains(module, "\\") {
		return "", fmt.Errorf("use / to separate directories")
	}
	joined := path.Join(path.Dir(fromRel), module)
	if joined == ".." || strings.HasPrefix(joined, "../") {
		return "", fmt.Errorf("the path leaves the workspace %s", ws.Root())
	}
	return joined, nil
}

// starFiles lists the workspace's candidate workflow files: every *.star
// file, recursively, skipping dot-directories and *_test.star files.
func (ws *Workspace) starFiles() ([]string, error) {
	var files []string
	err := fs.WalkDir(ws.fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil // an unreadable corner of the workspace is not a candidate
		}
		name := d.Name()
		if d.IsDir() {
			if p != "." && strings.HasPrefix(name, ".") {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".star") && !strings.HasSuffix(name, "_test.star") {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

// Dir is the workspace's absolute directory, or "" when it is not a
// directory on disk.
func (ws *Workspace) Dir() string { return ws.dir }
