package builtins

import (
	"io"

	"github.com/flowscript/flowscript/internal/mask"
)

// Secret masking lives in internal/mask; these are its names here, for
// the engine and the step code.

// Mask is what a secret value is replaced with.
const Mask = mask.Mask

// Masker masks the secrets written through it (see mask.Masker).
type Masker = mask.Masker

// NewMasker returns a Masker writing to w. Empty secrets are ignored.
func NewMasker(w io.Writer, secrets []string) *Masker { return mask.New(w, secrets) }

// MaskString returns s with every secret value in it replaced by "***".
func MaskString(s string, secrets []string) string { return mask.String(s, secrets) }

// MaskValue returns v with every string inside it masked (see mask.Value).
func MaskValue(v any, secrets []string) any { return mask.Value(v, secrets) }
