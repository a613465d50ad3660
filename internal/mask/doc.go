// Package mask hides secret values in text: String and Value mask a
// string or a decoded JSON value, and a Masker masks a stream, even a
// secret split across writes. Each secret is also masked in the forms it
// commonly leaks in (JSON-escaped, URL-encoded, base64, line by line).
// The step builtins, the engine's records and its logs all mask through
// it (builtins re-exports it as builtins.Masker, NewMasker, MaskString and
// MaskValue).
package mask
