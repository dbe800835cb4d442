package network

import (
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// TestJacobiansFD proves that the explicit per-example jacobians of the
// logits and of the outputs (both splits) equal the finite-difference
// jacobians of the network's Forward with respect to the parameters.
// Tolerance: central differences with step 1e-6, 1e-8 + 1e-7·max|J|.
func TestJacobiansFD(t *testing.T) {
	for ci, c := range cases {
		net, X, _ := setup(c, 3, uint64(180+ci))
		theta := net.Params(nil)
		n, _ := X.Dims()
		k := c.sizes[len(c.sizes)-1]
		for _, s := range splits {
			J := Jacobians(net, X, s)
			for i := 0; i < n; i++ {
				x := mat.NewDense(1, c.sizes[0], X.RawRowView(i))
				want := mat.NewDense(k, len(theta), nil)
				fd.Jacobian(want, func(y, th []float64) {
					net.SetParams(th)
					net.Forward(x)
					o := net.Output()
					if s == nn.SplitLogits {
						copy(y, o.A.RawRowView(0))
					} else {
						copy(y, o.F.RawRowView(0))
					}
				}, theta, &fd.JacobianSettings{Formula: fd.Central, Step: 1e-6})
				net.SetParams(theta)
				testutil.EqualApprox(t, c.name+"/"+s.String(), J[i], want, 1e-8, 1e-7)
			}
		}
	}
}
