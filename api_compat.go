package flowscript

import (
	"context"
	"io/fs"
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
