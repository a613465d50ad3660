package main

// This file: tree's grouping of a fan-out's children. The children of a
// for_each or loop step (parent steps load[0], load[1], …) are many: past
// maxListedChildren they print as one line of counts, load[0..999]: 997
// succeeded, 3 failed, followed by the children that did not succeed.

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/flowscript/flowscript"
)

// maxListedFailures bounds the children a group lists that did not succeed.
const maxListedFailures = 50

var iterationRE = regexp.MustCompile(`^(.+)\[(\d+)\]$`)

// iterationOf splits a fan-out child's parent step, "load[3]".
func iterationOf(r *flowscript.RunRecord) (step string, i int, ok bool) {
	if r.ParentStepID == nil {
		return "", 0, false
	}
	m := iterationRE.FindStringSubmatch(*r.ParentStepID)
	if m == nil {
		return "", 0, false
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return "", 0, false
	}
	return m[1], n, true
}

// fanGroup is the children of one dynamic step of a run.
type fanGroup struct {
	step string
	kids []*flowscript.TreeNode
}

// fanGroups finds the dynamic steps of n with more children than tree
// lists one by one.
func fanGroups(n *flowscript.TreeNode) map[string]*fanGroup {
	groups := map[string]*fanGroup{}
	for _, c := range n.Children {
		if step, _, ok := iterationOf(&c.Run); ok {
			g := groups[step]
			if g == nil {
				g = &fanGroup{step: step}
				groups[step] = g
			}
			g.kids = append(g.kids, c)
		}
	}
	for s, g := range groups {
		if len(g.kids) <= maxListedChildren {
			delete(groups, s)
		}
	}
	return groups
}

// print writes the group's line and the children that did not succeed
// (of each index, the newest child counts; older ones are superseded).
func (g *fanGroup) print(v *treeView, w *tabwriter.Writer, indent string) {
	newest := map[int]*flowscript.TreeNode{}
	for _, k := range g.kids { // ids sort by creation: the last is the newest
		_, i, _ := iterationOf(&k.Run)
		newest[i] = k
	}
	idx := make([]int, 0, len(newest))
	for i := range newest {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	counts := map[flowscript.RunStatus]int{}
	var notOK []*flowscript.TreeNode
	for _, i := range idx {
		k := newest[i]
		counts[k.Run.Status]++
		if k.Run.Status != flowscript.RunSucceeded {
			notOK = append(notOK, k)
		}
	}
	var parts []string
	for _, st := range []flowscript.RunStatus{flowscript.RunSucceeded, flowscript.RunFailed, flowscript.RunCancelled, flowscript.RunRunning, flowscript.RunPending} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	if old := len(g.kids) - len(newest); old > 0 {
		parts = append(parts, fmt.Sprintf("%d superseded by a rerun", old))
	}
	fmt.Fprintf(w, "%s%s[%d..%d]: %s\n", indent, g.step, idx[0], idx[len(idx)-1], strings.Join(parts, ", "))
	for n, k := range notOK {
		if n == maxListedFailures {
			fmt.Fprintf(w, "%s  … %d more that did not succeed (flowscript runs --json lists them)\n", indent, len(notOK)-n)
			break
		}
		v.print(w, k, indent+"  ")
	}
}
