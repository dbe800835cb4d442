package optim_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// TestUndampedIdenticalRows: a batch whose examples are all the same input
// makes every input covariance singular. Undamped curvature-based
// optimizers must then raise their damping (curvature.RefreshDamped) or
// refuse the step, never take an unbounded one: over 5 steps on such a
// batch the risk stays finite and does not grow (with the damping
// restarted from 1e-10 of the blocks' mean eigenvalue, ACP took it from 3.8
// to 71, and to 10²⁸ with a fixed α; see curvature.RestartDamping).
func TestUndampedIdenticalRows(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  optim.Optimizer
		back bool
	}{
		{"ACP", &optim.ACP{Rules: optim.Rules{Undamped: true}}, false},
		{"ACP-fixed-alpha", &optim.ACP{Rules: optim.Rules{Undamped: true}, Alpha: 1}, false},
		{"KFAC", &optim.KFAC{Rules: optim.Rules{Undamped: true}}, true},
		{"Newton", &optim.Newton{Rules: optim.Rules{Undamped: true}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(41, 42))
			net := nn.New([]int{4, 8, 3}, []nn.Activation{nn.Tanh{}, nn.Identity{}})
			net.Init(nn.Glorot{}, rng)
			const n = 16
			x := mat.NewDense(n, 4, nil)
			for i := 0; i < n; i++ {
				x.SetRow(i, []float64{0.3, -1.2, 0.7, 2})
			}
			y := mat.NewDense(n, 3, nil)
			y.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, y)
			loss := nn.Quadratic{}
			r0 := net.Risk(loss, x, y)
			for step := 0; step < 5; step++ {
				net.Forward(x)
				net.Backward(loss, y)
				if tc.back {
					net.BackwardMC(loss, rng)
				}
				if err := tc.opt.Step(net.Records()); err != nil {
					t.Logf("step %d refused: %v", step, err)
					continue
				}
			}
			r1 := net.Risk(loss, x, y)
			if math.IsNaN(r1) || math.IsInf(r1, 0) || r1 > r0*(1+1e-9) {
				t.Errorf("risk %g → %g, want finite and not above the start", r0, r1)
			}
			t.Logf("risk %g → %g", r0, r1)
		})
	}
}
