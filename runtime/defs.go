package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/flowscript/flowscript/lang"
	"github.com/flowscript/flowscript/store"
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
	err := e.st.Update(ctx, func(tx store.Tx) error {
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
	return out, err
}

// registerTx stores one definition inside a transaction.
func (e *Engine) registerTx(tx store.Tx, prog *lang.Program) (Registered, error) {
	w := prog.Workflow
	reg := Registered{Name: w.Name}
	// the definition's own version lives in its stored record; the
	// program may be cached for its content hash
	if v, err := tx.Get(defHashKey(w.Name, prog.Hash)); err == nil {
		reg.Version, _ = strconv.Atoi(string(v))
		if w.Version == 0 || w.Version == reg.Version {
			return reg, nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return reg, err
	}
	latest := 0
	if v, err := tx.Get(defMetaKey(w.Name)); err == nil {
		latest, _ = strconv.Atoi(string(v))
	} else if !errors.Is(err, store.ErrNotFound) {
		return reg, err
	}
	reg.Version = latest + 1
	if w.Version > 0 {
		reg.Version = w.Version
		if old, err := tx.Get(defKey(w.Name, reg.Version)); err == nil {
			var prev definitionRecord
			if json.Unmarshal(old, &prev) == nil && prev.Hash != prog.Hash {
				return reg, fmt.Errorf("%w: %s version %d is already registered with different content; change version= or leave it out to get a new version", ErrVersionConflict, w.Name, reg.Version)
			}
			return reg, nil
		} else if !errors.Is(err, store.ErrNotFound) {
			return reg, err
		}
	}
	params := map[string]any{}
	for _, p := range w.Params {
		params[p.Name] = p.Default
	}
	rec := definitionRecord{
		Name: w.Name, Version: reg.Version, Hash: prog.Hash, Root: prog.Root,
		Files: prog.Files, Params: params, Secrets: w.Secrets, RegisteredAt: e.now(),
	}
	val, err := json.Marshal(&rec)
	if err != nil {
		return reg, err
	}
	if err := tx.Set(defKey(w.Name, reg.Version), val); err != nil {
		return reg, err
	}
	if err := tx.Set(defHashKey(w.Name, prog.Hash), []byte(strconv.Itoa(reg.Version))); err != nil {
		return reg, err
	}
	reg.New = reg.Version > latest
	return reg, tx.Set(defMetaKey(w.Name), []byte(strconv.Itoa(max(latest, reg.Version))))
}

// definition reads a stored definition; version 0 means the latest.
func (e *Engine) definition(ctx context.Context, name string, version int) (*definitionRecord, error) {
	var rec *definitionRecord
	err := e.st.View(ctx, func(tx store.Tx) error {
		if version == 0 {
			v, err := tx.Get(defMetaKey(name))
			if err != nil {
				return err
			}
			version, _ = strconv.Atoi(string(v))
		}
		data, err := tx.Get(defKey(name, version))
		if err != nil {
			return err
		}
		rec = &definitionRecord{}
		return json.Unmarshal(data, rec)
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// program evaluates a stored definition's source snapshot. Programs are
// immutable once evaluated, so the same content is evaluated once.
func (e *Engine) program(ctx context.Context, def *definitionRecord) (*lang.Program, error) {
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
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &lang.Definition{Name: def.Name, Version: def.Version, Hash: def.Hash, Root: def.Root, Files: def.Files}, true, nil
}

func (r registry) DefinitionNames(ctx context.Context) ([]string, error) {
	var names []string
	err := r.e.st.View(ctx, func(tx store.Tx) error {
		return tx.Scan([]byte(prefixDefMeta), store.ScanOptions{KeysOnly: true}, func(k, _ []byte) error {
			names = append(names, string(k[len(prefixDefMeta):]))
			return nil
		})
	})
	return names, err
}
