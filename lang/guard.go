package lang

import (
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"

	"github.com/flowscript/flowscript/builtins"
)

// ExecFile parses, guards, resolves and runs one script file, as
// starlark.ExecFileOptions does, with one step between parsing and
// resolving: guardFile rewrites the operations that would build a huge
// collection in one uninterruptible Go call.
func ExecFile(thread *starlark.Thread, filename string, src []byte, predeclared starlark.StringDict) (starlark.StringDict, error) {
	f, err := FileOptions.Parse(filename, src, 0)
	if err != nil {
		return nil, err
	}
	guardFile(f)
	prog, err := starlark.FileProgram(f, predeclared.Has)
	if err != nil {
		return nil, err
	}
	g, err := prog.Init(thread, predeclared)
	g.Freeze()
	return g, err
}

// guardFile rewrites, in declarations and bodies alike:
//
//	x * y            -> $mul(x, y)            (a list, tuple, string or bytes repeated)
//	name *= y        -> name = $mul(name, y)
//	x += y           -> x += $bound(y, "+=")  (a list extended by a range)
//	x.extend(y)      -> x.extend($bound(y, "extend")), and so for update,
//	                    union and the other set methods
//
// $mul and $bound (builtins.RepeatBuiltin, BoundBuiltin) refuse an
// operation past builtins.MaxCollectionLen elements and otherwise do
// exactly what the operator would. A `*` of two number literals is left
// alone, and so is `a[i] *= n` (rewriting it would evaluate a and i
// twice).
func guardFile(f *syntax.File) {
	g := guarder{}
	g.stmts(f.Stmts)
}

type guarder struct{}

func (g guarder) stmts(list []syntax.Stmt) {
	for _, s := range list {
		g.stmt(s)
	}
}

func (g guarder) stmt(s syntax.Stmt) {
	switch s := s.(type) {
	case *syntax.AssignStmt:
		s.LHS = g.expr(s.LHS)
		s.RHS = g.expr(s.RHS)
		switch s.Op {
		case syntax.STAR_EQ:
			if id, ok := s.LHS.(*syntax.Ident); ok {
				s.Op = syntax.EQ
				s.RHS = call(builtins.RepeatBuiltin, s.OpPos, &syntax.Ident{NamePos: id.NamePos, Name: id.Name}, s.RHS)
			}
		case syntax.PLUS_EQ:
			s.RHS = call(builtins.BoundBuiltin, s.OpPos, s.RHS, str("+=", s.OpPos))
		}
	case *syntax.DefStmt:
		g.params(s.Params)
		g.stmts(s.Body)
	case *syntax.ExprStmt:
		s.X = g.expr(s.X)
	case *syntax.IfStmt:
		s.Cond = g.expr(s.Cond)
		g.stmts(s.True)
		g.stmts(s.False)
	case *syntax.ForStmt:
		s.X = g.expr(s.X)
		g.stmts(s.Body)
	case *syntax.WhileStmt:
		s.Cond = g.expr(s.Cond)
		g.stmts(s.Body)
	case *syntax.ReturnStmt:
		if s.Result != nil {
			s.Result = g.expr(s.Result)
		}
	}
}

func (g guarder) params(ps []syntax.Expr) {
	for _, p := range ps {
		if b, ok := p.(*syntax.BinaryExpr); ok && b.Op == syntax.EQ {
			b.Y = g.expr(b.Y) // a default value
		}
	}
}

func (g guarder) exprs(list []syntax.Expr) {
	for i, e := range list {
		list[i] = g.expr(e)
	}
}

func (g guarder) expr(e syntax.Expr) syntax.Expr {
	switch e := e.(type) {
	case *syntax.BinaryExpr:
		e.X, e.Y = g.expr(e.X), g.expr(e.Y)
		if e.Op == syntax.STAR && !(isNumber(e.X) && isNumber(e.Y)) {
			return call(builtins.RepeatBuiltin, e.OpPos, e.X, e.Y)
		}
	case *syntax.CallExpr:
		e.Fn = g.expr(e.Fn)
		for i, a := range e.Args {
			switch a := a.(type) {
			case *syntax.BinaryExpr:
				if a.Op == syntax.EQ { // name = value
					a.Y = g.expr(a.Y)
					continue
				}
			case *syntax.UnaryExpr:
				if a.Op == syntax.STAR || a.Op == syntax.STARSTAR {
					a.X = g.expr(a.X)
					continue
				}
			}
			e.Args[i] = g.expr(a)
			if dot, ok := e.Fn.(*syntax.DotExpr); ok && builtins.BoundedMethods[dot.Name.Name] {
				start, _ := a.Span()
				e.Args[i] = call(builtins.BoundBuiltin, start, e.Args[i], str(dot.Name.Name, start))
			}
		}
	case *syntax.Comprehension:
		e.Body = g.expr(e.Body)
		for _, c := range e.Clauses {
			switch c := c.(type) {
			case *syntax.ForClause:
				c.X = g.expr(c.X)
			case *syntax.IfClause:
				c.Cond = g.expr(c.Cond)
			}
		}
	case *syntax.CondExpr:
		e.Cond, e.True, e.False = g.expr(e.Cond), g.expr(e.True), g.expr(e.False)
	case *syntax.DictEntry:
		e.Key, e.Value = g.expr(e.Key), g.expr(e.Value)
	case *syntax.DictExpr:
		g.exprs(e.List)
	case *syntax.DotExpr:
		e.X = g.expr(e.X)
	case *syntax.IndexExpr:
		e.X, e.Y = g.expr(e.X), g.expr(e.Y)
	case *syntax.LambdaExpr:
		g.params(e.Params)
		e.Body = g.expr(e.Body)
	case *syntax.ListExpr:
		g.exprs(e.List)
	case *syntax.ParenExpr:
		e.X = g.expr(e.X)
	case *syntax.SliceExpr:
		e.X = g.expr(e.X)
		if e.Lo != nil {
			e.Lo = g.expr(e.Lo)
		}
		if e.Hi != nil {
			e.Hi = g.expr(e.Hi)
		}
		if e.Step != nil {
			e.Step = g.expr(e.Step)
		}
	case *syntax.TupleExpr:
		g.exprs(e.List)
	case *syntax.UnaryExpr:
		if e.X != nil {
			e.X = g.expr(e.X)
		}
	}
	return e
}

func isNumber(e syntax.Expr) bool {
	l, ok := e.(*syntax.Literal)
	return ok && (l.Token == syntax.INT || l.Token == syntax.FLOAT)
}

// call is a call of a guard builtin at pos, the position errors name.
func call(name string, pos syntax.Position, args ...syntax.Expr) *syntax.CallExpr {
	return &syntax.CallExpr{Fn: &syntax.Ident{NamePos: pos, Name: name}, Lparen: pos, Args: args, Rparen: pos}
}

func str(s string, pos syntax.Position) *syntax.Literal {
	return &syntax.Literal{Token: syntax.STRING, TokenPos: pos, Raw: `"` + s + `"`, Value: s}
}

// GuardFile rewrites a parsed file as ExecFile does before resolving it
// (the REPL's chunks). What runs a guarded file must predeclare
// builtins.SafeUniverse().
func GuardFile(f *syntax.File) { guardFile(f) }
