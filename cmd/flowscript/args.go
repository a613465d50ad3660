package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// reorderArgs lets flags come before or after positional arguments, and
// global flags after the command name, which urfave/cli does not: it stops
// reading flags at the first positional argument. The result puts global
// flags first, then the command, its flags, and its positional arguments
// (after "--", so that none of them is read as a flag). A command's --help
// drops the positional arguments, which urfave/cli would otherwise take for
// the name of a subcommand to explain. A flag that needs a value and comes
// last, with none, is a usage error (reordered, it would take "--").
func reorderArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	globals := flagArity(app.Flags)
	var head []string // global flags given before the command
	i := 1
	for ; i < len(args); i++ {
		a := args[i]
		if !isFlag(a) {
			break
		}
		head = append(head, a)
		if takesValue(globals, a) && i+1 < len(args) {
			i++
			head = append(head, args[i])
		}
	}
	if i >= len(args) {
		return args, nil
	}
	cmd := app.Command(args[i])
	if cmd == nil {
		return args, nil
	}
	local := flagArity(cmd.Flags)
	var flags, positional []string
	help := false
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		if a == "--" {
			positional = append(positional, rest[j+1:]...)
			break
		}
		if !isFlag(a) {
			positional = append(positional, a)
			continue
		}
		name := flagName(a)
		if name == "help" || name == "h" {
			help = true
		}
		_, isLocal := local[name]
		_, isGlobal := globals[name]
		target := &flags
		if !isLocal && isGlobal {
			target = &head
		}
		*target = append(*target, a)
		arity := local
		if !isLocal {
			arity = globals
		}
		if takesValue(arity, a) {
			if j+1 >= len(rest) || rest[j+1] == "--" {
				return nil, usageErrorf("flowscript: flag needs an argument: %s (see flowscript %s --help)", a, cmd.Name)
			}
			j++
			*target = append(*target, rest[j])
		}
	}
	out := append([]string{args[0]}, head...)
	out = append(out, args[i])
	out = append(out, flags...)
	if len(positional) > 0 && !help {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out, nil
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' && a != "--" }

func flagName(a string) string {
	a = strings.TrimLeft(a, "-")
	if i := strings.IndexByte(a, '='); i >= 0 {
		a = a[:i]
	}
	return a
}

// takesValue reports whether the flag a, written without "=value", reads
// the next argument as its value.
func takesValue(arity map[string]bool, a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	return arity[flagName(a)]
}

// flagArity maps every flag name and alias to whether it takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	m := map[string]bool{"help": false, "h": false}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}
