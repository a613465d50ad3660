package flowscript

// This file: reading and replacing the arguments of a builtin call, by
// position or keyword (the stand-ins wrap the step builtins with them).

import "go.starlark.net/starlark"

// argValue finds an argument given by position or keyword.
func argValue(args starlark.Tuple, kwargs []starlark.Tuple, pos int, name string) (starlark.Value, bool) {
	if pos < len(args) {
		return args[pos], true
	}
	for _, kv := range kwargs {
		if string(kv[0].(starlark.String)) == name {
			return kv[1], true
		}
	}
	return nil, false
}

func argString(args starlark.Tuple, kwargs []starlark.Tuple, pos int, name string) (string, bool) {
	v, ok := argValue(args, kwargs, pos, name)
	if !ok {
		return "", false
	}
	s, ok := v.(starlark.String)
	return string(s), ok
}

// setArg replaces an argument where it was given (by position or
// keyword), or adds it by keyword.
func setArg(args starlark.Tuple, kwargs []starlark.Tuple, pos int, name string, v starlark.Value) (starlark.Tuple, []starlark.Tuple) {
	if pos < len(args) {
		out := append(starlark.Tuple(nil), args...)
		out[pos] = v
		return out, kwargs
	}
	out := make([]starlark.Tuple, 0, len(kwargs)+1)
	for _, kv := range kwargs {
		if string(kv[0].(starlark.String)) != name {
			out = append(out, kv)
		}
	}
	return args, append(out, starlark.Tuple{starlark.String(name), v})
}
