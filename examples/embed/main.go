// Command embed is a host program that embeds flowscript: it registers a
// Go task handler and a Starlark module, runs the workflow order.star
// (compiled into the binary) that calls them, and, with -serve, lets the
// flowscript command reach its runs (flowscript show --db DIR RUN).
//
//	go run ./examples/embed -item lamp -qty 2
//	go run ./examples/embed -db /tmp/shop -serve -hold   # then: flowscript runs --db /tmp/shop
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/hashicorp/go-hclog"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"

	"github.com/flowscript/flowscript"
)

//go:embed order.star
var scripts embed.FS

// inventory is the host's own state, which the workflow changes through
// the handler.
type inventory struct {
	mu    sync.Mutex
	stock map[string]int
}

// reserve is a flowscript task handler: inputs in, output map out, an
// error fails the step.
func (inv *inventory) reserve(ctx context.Context, t *flowscript.TaskContext) (map[string]any, error) {
	item, _ := t.Inputs["item"].(string)
	qty, ok := wholeNumber(t.Inputs["qty"])
	if !ok || qty < 1 {
		return nil, fmt.Errorf("qty must be a whole number of at least 1, got %v", t.Inputs["qty"])
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.stock[item] < int(qty) {
		return nil, fmt.Errorf("out of stock: %s", item)
	}
	inv.stock[item] -= int(qty)
	fmt.Fprintf(t.Log, "reserved %d x %s for run %s\n", qty, item, t.RunID)
	return map[string]any{"left": inv.stock[item]}, nil
}

// wholeNumber reads a number from inputs: JSON numbers arrive as int64
// or float64, values the host passed in as they were.
func wholeNumber(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		return int64(n), n == float64(int64(n))
	}
	return 0, false
}

var prices = map[string]int{"book": 1500, "lamp": 2500}

// shopModule is a Starlark module scripts see as shop: shop.price(item).
var shopModule = &starlarkstruct.Module{Name: "shop", Members: starlark.StringDict{
	"price": starlark.NewBuiltin("shop.price", func(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		var item string
		if err := starlark.UnpackPositionalArgs(b.Name(), args, kwargs, 1, &item); err != nil {
			return nil, err
		}
		p, ok := prices[item]
		if !ok {
			return nil, fmt.Errorf("%s: no price for %q", b.Name(), item)
		}
		return starlark.MakeInt(p), nil
	}),
}}

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "the database directory (default: in memory)")
	item := fs.String("item", "book", "what to order")
	qty := fs.Int("qty", 1, "how many")
	serve := fs.Bool("serve", false, "answer flowscript show/runs/tree/history/logs/cancel --db DIR")
	hold := fs.Bool("hold", false, "after the order, keep the database (and serve it) until stdin closes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// the host's logger: flowscript logs through it
	logger := hclog.New(&hclog.LoggerOptions{Name: "shop", Level: hclog.Warn, Output: stderr})
	opts := flowscript.Options{Logger: logger.Named("flowscript")}
	var eng *flowscript.Engine
	var err error
	if *db != "" {
		eng, err = flowscript.Open(*db, opts)
	} else {
		eng, err = flowscript.OpenInMemory(opts)
	}
	if err != nil {
		fmt.Fprintln(stderr, "embed:", err)
		return 2
	}
	defer eng.Close()
	inv := &inventory{stock: map[string]int{"book": 3, "lamp": 2}}
	eng.RegisterHandler("inventory.reserve", inv.reserve)
	eng.RegisterModule("shop", shopModule)
	if *serve {
		if err := eng.Serve(flowscript.ServeOptions{}); err != nil {
			fmt.Fprintln(stderr, "embed:", err)
			return 2
		}
	}

	ctx := context.Background()
	prog, err := eng.Load(ctx, flowscript.FS(scripts, "order.star"), flowscript.LoadOptions{})
	if err != nil {
		fmt.Fprintln(stderr, err) // file:line:col: message, one per line
		return 2
	}
	rec, err := eng.Run(ctx, prog, flowscript.RunOptions{Params: map[string]any{"item": *item, "qty": *qty}})
	if errors.Is(err, flowscript.ErrInput) {
		fmt.Fprintln(stderr, "embed:", err)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "embed:", err)
		return 1
	}
	code := 0
	if rec.Status == flowscript.RunSucceeded {
		fmt.Fprintf(stdout, "order %s %s: %v\n", rec.ID, rec.Status, rec.Output.(map[string]any)["message"])
	} else {
		fmt.Fprintf(stdout, "order %s %s: %s\n", rec.ID, rec.Status, *rec.Error)
		code = 1
	}
	if *hold {
		fmt.Fprintf(stdout, "holding %s until stdin closes\n", *db)
		io.Copy(io.Discard, stdin)
	}
	return code
}
