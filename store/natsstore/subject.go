package natsstore

import (
	"bytes"
	"fmt"
	"strings"
)

// Keys are arbitrary bytes; subjects are dot-separated tokens of printable
// ASCII without '*', '>' or whitespace. A key maps to a subject by
// splitting it at '/' and encoding each segment as one token: ASCII
// letters, digits and '-' stand for themselves, every other byte is '_'
// and two upper-case hex digits, and an empty segment is a lone '_'.
//
// The mapping is reversible and keeps the segment structure, so a key
// prefix that ends at a '/' is a token-aligned subject filter
// ("run/r1/" → "<base>.run.r1.>"). It does not keep the byte order of
// keys; scans sort the decoded keys client-side.

// appendTokens appends the tokens of segments to dst, separated by dots.
func appendTokens(dst []byte, segments [][]byte) []byte {
	for i, seg := range segments {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = appendToken(dst, seg)
	}
	return dst
}

func appendToken(dst, seg []byte) []byte {
	if len(seg) == 0 {
		return append(dst, '_')
	}
	const hex = "0123456789ABCDEF"
	for _, c := range seg {
		if plain(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '_', hex[c>>4], hex[c&0xf])
	}
	return dst
}

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// keySubject is the subject that holds key under base.
func keySubject(base string, key []byte) string {
	b := make([]byte, 0, len(base)+1+len(key)*3/2+4)
	b = append(b, base...)
	b = append(b, '.')
	b = appendTokens(b, bytes.Split(key, []byte{'/'}))
	return string(b)
}

// subjectKey decodes a subject under base back into its key.
func subjectKey(base, subject string) ([]byte, error) {
	rest, ok := strings.CutPrefix(subject, base+".")
	if !ok || rest == "" {
		return nil, fmt.Errorf("natsstore: subject %q is not under %q", subject, base)
	}
	key := make([]byte, 0, len(rest))
	for i, tok := range strings.Split(rest, ".") {
		if i > 0 {
			key = append(key, '/')
		}
		if tok == "_" {
			continue
		}
		for j := 0; j < len(tok); j++ {
			c := tok[j]
			if plain(c) {
				key = append(key, c)
				continue
			}
			if c != '_' || j+2 >= len(tok) {
				return nil, fmt.Errorf("natsstore: subject %q: bad token %q", subject, tok)
			}
			hi, lo := unhex(tok[j+1]), unhex(tok[j+2])
			if hi < 0 || lo < 0 {
				return nil, fmt.Errorf("natsstore: subject %q: bad escape in token %q", subject, tok)
			}
			key = append(key, byte(hi<<4|lo))
			j += 2
		}
	}
	return key, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// prefixFilter is the narrowest token-aligned subject filter under base
// that every key beginning with prefix matches: the complete segments of
// prefix (those followed by a '/') and a '>' wildcard. Keys it matches
// must still be checked against prefix.
func prefixFilter(base string, prefix []byte) string {
	i := bytes.LastIndexByte(prefix, '/')
	if i < 0 {
		return base + ".>"
	}
	b := []byte(base + ".")
	b = appendTokens(b, bytes.Split(prefix[:i], []byte{'/'}))
	return string(b) + ".>"
}
