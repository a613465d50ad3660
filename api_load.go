package flowscript

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime"
)

// A Source is where a workflow script comes from: File, FS or Script.
// Every loader takes one, with the same LoadOptions.
type Source struct {
	path string // File and FS: the script's path
	fsys fs.FS  // FS
	name string // Script: its file name
	src  []byte // Script: its source
	kind sourceKind
}

type sourceKind int

const (
	sourceFile sourceKind = iota + 1
	sourceFS
	sourceScript
)

// File is a script on disk. Its workspace (where load() and child
// workflow names resolve) is the file's directory, unless
// LoadOptions.Workspace names another.
func File(path string) Source { return Source{kind: sourceFile, path: path} }

// FS is the script at path (slash-separated) in a file system, such as an
// embed.FS; the file system is its workspace.
func FS(fsys fs.FS, path string) Source { return Source{kind: sourceFS, fsys: fsys, path: path} }

// Script is source held in memory; name is its file name, for positions
// and the default workflow name. Its loads and children resolve in
// LoadOptions.Workspace when that is set; otherwise it stands alone.
func Script(name, src string) Source {
	return Source{kind: sourceScript, name: name, src: []byte(src)}
}

// LoadOptions tunes loading. The zero value is the default.
type LoadOptions struct {
	// Workspace is the directory load() and child names resolve in;
	// default: a File's own directory.
	Workspace string
	// BaseDir, when set, is the directory relative paths are taken from
	// instead of the current one; positions still show them as given.
	BaseDir string
	// MaxSteps bounds the Starlark execution steps of declaring the
	// workflow (0: 10 million). An engine's loads use the engine's.
	MaxSteps uint64
}

// Program is a loaded and validated workflow, ready to Start.
type Program struct {
	p *lang.Program
}

// Name is the workflow's name: workflow(name=...), else the file name.
func (p *Program) Name() string { return p.p.Workflow.Name }

// Version is the version the script declares, or 0 for automatic.
func (p *Program) Version() int { return p.p.Workflow.Version }

// Params are the declared params with their defaults.
func (p *Program) Params() map[string]any {
	out := make(map[string]any, len(p.p.Workflow.Params))
	for _, prm := range p.p.Workflow.Params {
		out[prm.Name] = prm.Default
	}
	return out
}

// Secrets are the declared secret names.
func (p *Program) Secrets() []string { return append([]string(nil), p.p.Workflow.Secrets...) }

// Steps are the step ids in declaration order.
func (p *Program) Steps() []string {
	ids := make([]string, len(p.p.Workflow.Steps))
	for i, s := range p.p.Workflow.Steps {
		ids[i] = s.ID
	}
	return ids
}

// File is the root script's name as positions show it.
func (p *Program) File() string { return p.p.Workflow.File }

// GraphFormats are the formats WriteGraph accepts.
var GraphFormats = append([]string(nil), dag.Formats...)

// GraphOptions tunes WriteGraph. The zero value draws the workflow alone.
type GraphOptions struct {
	// Expand nests the DAG of each statically known child workflow inside
	// its sub_workflow step, up to the nesting limit (`graph --expand`);
	// script= children stay opaque.
	Expand bool
}

// WriteGraph writes the workflow's DAG in a format of GraphFormats: text,
// dot, mermaid or json (what `flowscript graph` prints).
func (p *Program) WriteGraph(w io.Writer, format string, opts GraphOptions) error {
	var ro dag.RenderOptions
	if opts.Expand {
		limit := p.p.Workflow.EffectiveMaxDepth()
		ws := p.p.Workspace
		ro.Expand = func(s *dag.Step, depth int) *dag.Workflow {
			if depth > limit {
				return nil
			}
			child, err := ws.Resolve(context.Background(), s.Child.Name, s.Child.Version)
			if err != nil {
				return nil
			}
			return child.Workflow
		}
	}
	return dag.RenderFormat(w, p.p.Workflow, format, ro)
}

// DefaultMaxSteps bounds the Starlark execution steps of declaring one
// workflow (LoadOptions.MaxSteps, Options.MaxSteps).
const DefaultMaxSteps = lang.DefaultMaxSteps

// DefaultMaxChildren is the default of Options.MaxChildren: the child
// runs one run may have in all (SPEC §8).
const DefaultMaxChildren = runtime.DefaultMaxChildren

// FormatValue writes workflow data (params, inputs, outputs) the way
// scripts write it: {"k": [1, "x"]}.
func FormatValue(v any) string { return dag.FormatValue(v) }

// Load evaluates a workflow script and runs every check of validation,
// without an engine: child workflows are found among the workspace's
// files only (an engine's Load also finds registered ones). Script
// problems come back as *ScriptErrors.
func Load(ctx context.Context, src Source, opts LoadOptions) (*Program, error) {
	return load(ctx, src, opts, lang.Options{MaxSteps: opts.MaxSteps})
}

// Validate is Load for its errors only: nil when the script is sound.
func Validate(ctx context.Context, src Source, opts LoadOptions) error {
	_, err := Load(ctx, src, opts)
	return err
}

func load(ctx context.Context, src Source, opts LoadOptions, lo lang.Options) (*Program, error) {
	var (
		ws  *lang.Workspace
		rel string
		err error
	)
	switch src.kind {
	case sourceFile:
		ws, rel, err = fileWorkspace(src.path, opts, lo)
	case sourceFS:
		ws, rel = lang.NewWorkspaceFS(src.fsys, "", lo), src.path
	case sourceScript:
		if opts.Workspace == "" {
			ws, rel = lang.NewWorkspaceFiles(map[string][]byte{src.name: src.src}, lo), src.name
			break
		}
		ws, err = openWorkspace(opts.Workspace, opts.BaseDir, lo)
		if err == nil {
			return checked(ctx, ws, func() (*lang.Program, error) { return ws.LoadSource(ctx, src.name, src.src) })
		}
	default:
		return nil, &inputError{"flowscript.Load: the Source is empty (use File, FS or Script)"}
	}
	if err != nil {
		return nil, err
	}
	return checked(ctx, ws, func() (*lang.Program, error) { return ws.Load(ctx, rel) })
}

func fileWorkspace(file string, opts LoadOptions, lo lang.Options) (*lang.Workspace, string, error) {
	dir := opts.Workspace
	if dir == "" {
		dir = filepath.Dir(file)
	}
	given, givenDir := file, dir
	if opts.BaseDir != "" && !filepath.IsAbs(file) {
		file = filepath.Join(opts.BaseDir, file)
	}
	ws, err := openWorkspace(dir, opts.BaseDir, lo)
	if err != nil {
		return nil, "", err
	}
	abs := dir
	if opts.BaseDir != "" && !filepath.IsAbs(dir) {
		abs = filepath.Join(opts.BaseDir, dir)
	}
	rel, err := lang.Rel(abs, file)
	if err != nil {
		// named as the caller gave them, not as joined to BaseDir
		return nil, "", &inputError{given + " is outside the workspace " + givenDir}
	}
	return ws, rel, nil
}

func openWorkspace(dir, base string, lo lang.Options) (*lang.Workspace, error) {
	display := dir
	if base != "" && !filepath.IsAbs(dir) {
		dir = filepath.Join(base, dir)
	}
	ws, err := lang.OpenWorkspaceAs(dir, display, lo)
	if err != nil {
		return nil, &inputError{err.Error()}
	}
	return ws, nil
}

func checked(ctx context.Context, ws *lang.Workspace, eval func() (*lang.Program, error)) (*Program, error) {
	prog, err := eval()
	var list dag.ErrorList
	if err != nil && !errors.As(err, &list) && ctx.Err() == nil {
		// the file or workspace cannot be read: a problem with the input
		return nil, &inputError{err.Error()}
	}
	if err != nil {
		return nil, apiError(err)
	}
	if errs := ws.Check(ctx, prog); len(errs) > 0 {
		return nil, scriptErrorsOf(errs)
	}
	return &Program{p: prog}, nil
}

// inputError is a problem with what the caller gave; errors.Is(err,
// ErrInput) holds.
type inputError struct{ msg string }

func (e *inputError) Error() string        { return e.msg }
func (e *inputError) Is(target error) bool { return target == ErrInput }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DecodeJSON decodes JSON as workflow data, the form params, inputs and
// outputs have once stored: whole numbers int64, other numbers float64.
func DecodeJSON(data []byte) (any, error) { return dag.DecodeJSON(data) }
