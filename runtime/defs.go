package runtime

import (
	"context"
	"errors"
	"fmt"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/runtime/journal"
)

// ErrVersionConflict: the same name and explicit version was registered
// with other content.
var ErrVersionConflict = errors.New("version conflict")

// Register stores a program's workflow as a definition and returns its
// version: content equal to a stored version reuses it, new content gets
// the highest version + 1 (or the version the script declares).
func (e *Engine) Register(ctx context.Context, prog *lang.Program) (int, error) {
	regs, err := e.registerAll(ctx, []*lang.Program{prog})
	if err != nil {
		return 0, err
	}
	return regs[0].Version, nil
}

// registerAll stores the definitions of several programs in one
// transaction: when any is refused (a version conflict), none is stored.
func (e *Engine) registerAll(ctx context.Context, progs []*lang.Program) ([]Registered, error) {
	var out []Registered
	err := e.j.Update(ctx, func(tx *journal.Tx) error {
		out = out[:0]
		for _, p := range progs {
			r, err := e.registerTx(tx, p)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if errors.Is(err, ErrVersionConflict) {
		return nil, &InputError{Msg: err.Error()}
	}
	// the latest versions of these names may have moved
	e.progMu.Lock()
	for _, p := range progs {
		delete(e.latest, p.Workflow.Name)
	}
	e.defGen++
	e.progMu.Unlock()
	return out, err
}

// registerTx stores one definition inside a transaction.
func (e *Engine) registerTx(tx *journal.Tx, prog *lang.Program) (Registered, error) {
	w := prog.Workflow
	reg := Registered{Name: w.Name}
	// the definition's own version lives in its stored record; the
	// program may be cached for its content hash
	v, err := tx.VersionOf(w.Name, prog.Hash)
	if err != nil {
		return reg, err
	}
	if v > 0 {
		reg.Version = v
		if w.Version == 0 || w.Version == reg.Version {
			return reg, nil
		}
	}
	latest, err := tx.LatestVersion(w.Name)
	if err != nil {
		return reg, err
	}
	reg.Version = latest + 1
	if w.Version > 0 {
		reg.Version = w.Version
		if prev, err := tx.Definition(w.Name, reg.Version); err == nil {
			if prev.Hash != prog.Hash {
				return reg, fmt.Errorf("%w: %s version %d is already registered with different content; change version= or leave it out to get a new version", ErrVersionConflict, w.Name, reg.Version)
			}
			return reg, nil
		} else if !errors.Is(err, journal.ErrNotFound) {
			return reg, err
		}
	}
	params := map[string]any{}
	for _, p := range w.Params {
		params[p.Name] = p.Default
	}
	rec := journal.Definition{
		Name: w.Name, Version: reg.Version, Hash: prog.Hash, Root: prog.Root,
		Files: prog.Files, Params: params, Secrets: w.Secrets, RegisteredAt: e.now(),
	}
	reg.New = reg.Version > latest
	return reg, tx.PutDefinition(&rec, latest)
}

// definition reads a stored definition; version 0 means the latest. A
// version, once registered, never changes: the engine keeps those it read
// (and the latest version of each name, until this engine registers that
// name again), so that spawns find them without reading the store.
func (e *Engine) definition(ctx context.Context, name string, version int) (*journal.Definition, error) {
	if d := e.cachedDefinition(name, version); d != nil {
		return d, nil
	}
	e.progMu.Lock()
	gen := e.defGen
	e.progMu.Unlock()
	var rec *journal.Definition
	err := e.j.View(ctx, func(tx *journal.Tx) (err error) {
		rec, err = tx.Definition(name, version)
		return err
	})
	if err != nil {
		return nil, err
	}
	e.progMu.Lock()
	if len(e.defs) >= maxCachedPrograms {
		clear(e.defs)
		clear(e.latest)
	}
	e.defs[defRef{name, rec.Version}] = rec
	if version == 0 && gen == e.defGen {
		// no register came between the read and now
		e.latest[name] = rec.Version
	}
	e.progMu.Unlock()
	return rec, nil
}

// defRef names a definition version.
type defRef struct {
	name    string
	version int
}

// cachedDefinition is the definition the engine holds, or nil.
func (e *Engine) cachedDefinition(name string, version int) *journal.Definition {
	e.progMu.Lock()
	defer e.progMu.Unlock()
	if version == 0 {
		v, ok := e.latest[name]
		if !ok {
			return nil
		}
		version = v
	}
	return e.defs[defRef{name, version}]
}

// cachedProgram is the evaluated program of a content hash, or nil.
func (e *Engine) cachedProgram(hash string) *lang.Program {
	e.progMu.Lock()
	defer e.progMu.Unlock()
	return e.programs[hash]
}

// prefetchChildren reads, before a run's first decision, the definitions
// its sub_workflow steps spawn, and theirs in turn, and evaluates them:
// the spawns then find them in memory, under the run's lock. What cannot
// be known before (a script child, an idempotency binding) is read by the
// spawn itself, without the lock (spawnLater).
func (e *Engine) prefetchChildren(ctx context.Context, prog *lang.Program) {
	seen := map[defRef]bool{}
	var walk func(p *lang.Program, depth int)
	walk = func(p *lang.Program, depth int) {
		if depth > 64 {
			return
		}
		for _, s := range p.Workflow.Steps {
			c := s.Child
			if c == nil || c.Script != nil || c.Name == "" || seen[defRef{c.Name, c.Version}] {
				continue
			}
			seen[defRef{c.Name, c.Version}] = true
			def, err := e.definition(ctx, c.Name, c.Version)
			if err != nil {
				continue // the spawn reports it
			}
			child, err := e.program(ctx, def)
			if err != nil {
				continue
			}
			walk(child, depth+1)
		}
	}
	walk(prog, 0)
}

// program evaluates a stored definition's source snapshot. Programs are
// immutable once evaluated, so the same content is evaluated once.
func (e *Engine) program(ctx context.Context, def *journal.Definition) (*lang.Program, error) {
	e.progMu.Lock()
	prog, ok := e.programs[def.Hash]
	e.progMu.Unlock()
	if ok {
		return prog, nil
	}
	ws := lang.NewWorkspaceFiles(def.Files, e.LangOptions())
	prog, err := ws.Load(ctx, def.Root)
	if err != nil {
		return nil, fmt.Errorf("the stored source of %s version %d does not evaluate: %v", def.Name, def.Version, err)
	}
	e.progMu.Lock()
	if len(e.programs) >= maxCachedPrograms {
		clear(e.programs)
	}
	e.programs[def.Hash] = prog
	e.progMu.Unlock()
	return prog, nil
}

// maxCachedPrograms bounds the evaluated definitions kept in memory.
const maxCachedPrograms = 256

// registry lets lang find registered definitions.
type registry struct{ e *Engine }

func (r registry) LookupDefinition(ctx context.Context, name string, version int) (*lang.Definition, bool, error) {
	def, err := r.e.definition(ctx, name, version)
	if errors.Is(err, journal.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &lang.Definition{Name: def.Name, Version: def.Version, Hash: def.Hash, Root: def.Root, Files: def.Files}, true, nil
}

func (r registry) DefinitionNames(ctx context.Context) ([]string, error) {
	var names []string
	err := r.e.j.View(ctx, func(tx *journal.Tx) (err error) {
		names, err = tx.DefinitionNames()
		return err
	})
	return names, err
}
