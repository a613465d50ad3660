package dag

import (
	"container/heap"
	"fmt"
)

// TopoOrder returns the steps so that every step comes after the steps it
// depends on; among steps that could go next, the one declared first goes
// first. It fails on a cycle or an unknown dependency: call Validate first.
func TopoOrder(w *Workflow) ([]*Step, error) {
	n := len(w.Steps)
	indeg := make([]int, n)
	succ := make([][]int, n)
	for i, s := range w.Steps {
		for _, d := range s.Deps() {
			j := w.StepIndex(d.Step)
			if j < 0 {
				return nil, fmt.Errorf("step %q depends on unknown step %q", s.ID, d.Step)
			}
			succ[j] = append(succ[j], i)
			indeg[i]++
		}
	}
	ready := &intHeap{}
	for i := range w.Steps {
		if indeg[i] == 0 {
			*ready = append(*ready, i)
		}
	}
	heap.Init(ready)
	out := make([]*Step, 0, n)
	for ready.Len() > 0 {
		i := heap.Pop(ready).(int)
		out = append(out, w.Steps[i])
		for _, j := range succ[i] {
			indeg[j]--
			if indeg[j] == 0 {
				heap.Push(ready, j)
			}
		}
	}
	if len(out) != n {
		return nil, fmt.Errorf("the steps of workflow %q form a cycle", w.Name)
	}
	return out, nil
}

type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
