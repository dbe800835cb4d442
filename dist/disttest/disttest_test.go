package disttest_test

import (
	"math"
	"sync"
	"testing"

	"github.com/secondorder/secondorder/dist"
	"github.com/secondorder/secondorder/dist/disttest"
)

// Steps is the number of updates of every run.
const Steps = 6

// TestEquivalence runs every method on every task with 2 and 3 workers
// (goroutines of one process; shards of 16 and of 10, 11 and 11 examples)
// and checks that they end with the parameters of one process, and that
// they all hold the same bits.
func TestEquivalence(t *testing.T) {
	for _, size := range []int{2, 3} {
		for _, m := range disttest.Methods() {
			for _, task := range []disttest.Task{disttest.Classifier, disttest.Autoencoder} {
				diffs := make([]float64, size)
				thetas := make([][]float64, size)
				errs := make([]error, size)
				var wg sync.WaitGroup
				for r, c := range dist.NewGroup(size) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						diffs[r], thetas[r], errs[r] = disttest.Equivalence(c, m, task, Steps)
					}()
				}
				wg.Wait()
				for r := range size {
					if errs[r] != nil {
						t.Fatalf("%d workers, %s on %v: worker %d: %v", size, m.Name, task, r, errs[r])
					}
				}
				t.Logf("%d workers, %-11s %-11v relative difference %.1e", size, m.Name, task, diffs[0])
				tol := m.Tolerance
				if tol == 0 {
					tol = disttest.DefaultTolerance
				}
				if !(diffs[0] <= tol) {
					t.Errorf("%d workers, %s on %v: parameters differ from one process's by %.2e relative, want ≤ %.0e", size, m.Name, task, diffs[0], tol)
				}
				for r := 1; r < size; r++ {
					for i, v := range thetas[r] {
						if math.Float64bits(v) != math.Float64bits(thetas[0][i]) {
							t.Errorf("%d workers, %s on %v: worker %d's parameter %d is %v, worker 0's %v", size, m.Name, task, r, i, v, thetas[0][i])
							break
						}
					}
				}
			}
		}
	}
}
