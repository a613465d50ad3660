package flowscript

import (
	"context"
	"io/fs"

	"github.com/flowscript/flowscript/dag"
	"github.com/flowscript/flowscript/lang"
)

// LoadFile is Load(ctx, File(file), opts).
//
// Deprecated: use Load, which takes every kind of Source.
func (e *Engine) LoadFile(ctx context.Context, file string, opts LoadOptions) (*Program, error) {
	return e.Load(ctx, File(file), opts)
}

// LoadFS is Load(ctx, FS(fsys, path), LoadOptions{}).
//
// Deprecated: use Load, which takes every kind of Source.
func (e *Engine) LoadFS(ctx context.Context, fsys fs.FS, path string) (*Program, error) {
	return e.Load(ctx, FS(fsys, path), LoadOptions{})
}

// LoadString is Load(ctx, Script(name, src), LoadOptions{}).
//
// Deprecated: use Load, which takes every kind of Source.
func (e *Engine) LoadString(ctx context.Context, name, src string) (*Program, error) {
	return e.Load(ctx, Script(name, src), LoadOptions{})
}

// LangOptions are the evaluation options of package lang that this
// engine's scripts use.
//
// Deprecated: for the CLI's validate and graph commands until they load
// through Engine.Load; package lang is not part of the API.
func (e *Engine) LangOptions() lang.Options { return e.rt.LangOptions() }

// Workflow is the declared workflow as package dag holds it.
//
// Deprecated: for the CLI's typed --param reading until it uses
// Program.Params; package dag is not part of the API.
func (p *Program) Workflow() *dag.Workflow { return p.p.Workflow }
