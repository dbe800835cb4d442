package mpi

import (
	"math"
	"testing"

	"github.com/secondorder/secondorder/dist/disttest"
)

// TestEquivalence is the proof of data-parallel training across processes:
// under mpirun, every rank trains every optimizer of package optim
// (disttest.Methods) on its shard of every minibatch of disttest's tasks,
// through this package's Comm, and checks that it ends with the parameters
// of one process training alone on the whole minibatches, within the
// method's tolerance (disttest.DefaultTolerance, 1e-9 relative; SOAP
// disttest.SOAPTolerance), and with rank 0's parameters bit for bit. As a
// singleton (plain go test) it checks the single-process path.
func TestEquivalence(t *testing.T) {
	const steps = 6
	for _, m := range disttest.Methods() {
		for _, task := range disttest.Tasks() {
			diff, theta, err := disttest.Equivalence(comm, m, task, steps)
			if err != nil {
				t.Fatalf("rank %d: %v", comm.Rank(), err)
			}
			tol := m.Tolerance(task)
			t.Logf("%d ranks, %-11s %-11v relative difference %.1e", comm.Size(), m.Name, task, diff)
			if !(diff <= tol) {
				t.Errorf("rank %d, %s on %v: parameters %.2e away from one process's, relative; want ≤ %.0e", comm.Rank(), m.Name, task, diff, tol)
			}
			// Every rank must hold rank 0's parameters bit for bit.
			ref := append([]float64(nil), theta...)
			if err := comm.Broadcast(ref, 0); err != nil {
				t.Fatal(err)
			}
			for i, v := range theta {
				if math.Float64bits(v) != math.Float64bits(ref[i]) {
					t.Errorf("rank %d, %s on %v: parameter %d is %v, rank 0's %v", comm.Rank(), m.Name, task, i, v, ref[i])
					break
				}
			}
		}
	}
}
