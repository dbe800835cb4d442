package disttest_test

import (
	"math"
	"sync"
	"testing"

	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/dist"
	"github.com/secondorder/secondorder/dist/disttest"
	"github.com/secondorder/secondorder/optim"
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
			for _, task := range disttest.Tasks() {
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
				tol := m.Tolerance(task)
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

// counting is a K-FAC block that counts its Refreshes.
type counting struct {
	*curvature.KFACBlock
	n *int
}

func (b counting) Refresh(lambda float64) error {
	*b.n++
	return b.KFACBlock.Refresh(lambda)
}

// TestRefreshesSplit checks that two workers split the K-FAC refreshes of
// the autoencoder's four layers by cost (layers of costs 5425, 756, 576 and
// 4825: worker 0 gets layers 0 and 2, worker 1 layers 1 and 3), that each
// refreshes only its own, and that the result is still one process's.
func TestRefreshesSplit(t *testing.T) {
	const workers = 2
	counts := make([][4]int, workers)
	diffs := make([]float64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for r, c := range dist.NewGroup(workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := disttest.Method{Name: "KFAC-counted", New: func(cc dist.Comm, _ optim.Problem) optim.Optimizer {
				var own *[4]int
				if cc != nil {
					own = &counts[r]
				} else {
					own = new([4]int) // the reference run's
				}
				return &optim.Preconditioned{Rules: optim.Rules{Comm: cc, InversePeriod: 2}, ReadsBack: true,
					NewBlock: func(j int) curvature.Block { return counting{&curvature.KFACBlock{}, &own[j]} }}
			}}
			diffs[r], _, errs[r] = disttest.Equivalence(c, m, disttest.Autoencoder, Steps)
		}()
	}
	wg.Wait()
	for r := range workers {
		if errs[r] != nil {
			t.Fatal(errs[r])
		}
		if diffs[r] > disttest.DefaultTolerance {
			t.Errorf("worker %d: relative difference %.2e from one process", r, diffs[r])
		}
	}
	// Refreshes at updates 0, 2, 4 of six.
	want := [workers][4]int{{3, 0, 3, 0}, {0, 3, 0, 3}}
	for r := range workers {
		if counts[r] != want[r] {
			t.Errorf("worker %d refreshed layers %v times, want %v", r, counts[r], want[r])
		}
	}
}
