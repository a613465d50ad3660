package journal

import "fmt"

// ChildRuns calls fn with the record of each child of run parent, in the
// order the children were created (their ids sort so).
func (t *Tx) ChildRuns(parent string, fn func(child *RunRecord) error) error {
	kids, err := t.Children(parent)
	if err != nil {
		return err
	}
	for _, id := range kids {
		c, err := t.Run(id)
		if err != nil {
			return fmt.Errorf("child run %s: %w", id, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}
