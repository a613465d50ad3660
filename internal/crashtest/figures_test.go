package crashtest

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
)

// figures collects the rows of the table the suite prints when it ends
// (make reliability, and the short slice in make test with -v): one row
// per measured thing, grouped by section.
var figures struct {
	mu   sync.Mutex
	rows [][3]string // section, what, figure
}

// figure records one row of the table.
func figure(section, what string, format string, args ...any) {
	figures.mu.Lock()
	defer figures.mu.Unlock()
	figures.rows = append(figures.rows, [3]string{section, what, fmt.Sprintf(format, args...)})
}

// printFigures writes the table to stdout, sections in the order they
// first reported.
func printFigures() {
	figures.mu.Lock()
	defer figures.mu.Unlock()
	if len(figures.rows) == 0 {
		return
	}
	order := map[string]int{}
	for _, r := range figures.rows {
		if _, ok := order[r[0]]; !ok {
			order[r[0]] = len(order)
		}
	}
	rows := append([][3]string(nil), figures.rows...)
	sort.SliceStable(rows, func(i, j int) bool { return order[rows[i][0]] < order[rows[j][0]] })
	fmt.Println("\nreliability figures")
	w := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SECTION\tWHAT\tFIGURE")
	fmt.Fprintln(w, strings.Repeat("-", 10)+"\t"+strings.Repeat("-", 30)+"\t"+strings.Repeat("-", 20))
	last := ""
	for _, r := range rows {
		sec := r[0]
		if sec == last {
			sec = ""
		}
		last = r[0]
		fmt.Fprintf(w, "%s\t%s\t%s\n", sec, r[1], r[2])
	}
	w.Flush()
}
