package network

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// TestSuite3_GNEqualsHessianLinearModel proves that the Gauss–Newton matrix
// is the Hessian for a model linear in its parameters (one affine layer,
// identity output) with the quadratic loss, for both splits: the residual
// Σ_j (∂l/∂f_j) ∇²f_j vanishes because ∇²f = 0 (thesis §3.1.4).
// Tolerance: 1e-12·max|H|.
func TestSuite3_GNEqualsHessianLinearModel(t *testing.T) {
	c := netCase{"linear", []int{4, 3}, []nn.Activation{nn.Identity{}}, nn.Quadratic{}}
	net, X, Y := setup(c, 6, 60)
	var h, g mat.SymDense
	HessianMatrix(&h, net, c.loss, X, Y)
	for _, s := range splits {
		g.Reset()
		GaussNewtonMatrix(&g, net, c.loss, X, Y, nn.GaussNewton, s)
		testutil.EqualApprox(t, s.String(), &g, &h, 0, 1e-12)
	}
}

// TestSuite3_GNEqualsHessianZeroResidual proves that the Gauss–Newton
// matrix is the Hessian at zero residual: with the quadratic loss and the
// targets set to the network's own outputs, ∂l/∂f = 0 for every example,
// so H = G for three-layer networks with identity and sigmoid outputs and
// both splits, and ResidualMatrix is zero. The cross-entropy case would need
// one-hot outputs, which a softmax reaches only in the limit.
// Tolerance: 1e-12·max|H|, residual ≤ 1e-14.
func TestSuite3_GNEqualsHessianZeroResidual(t *testing.T) {
	for ci, c := range cases[:2] {
		net, X, _ := setup(c, 5, uint64(70+ci))
		Y := mat.DenseCopyOf(net.Forward(X))
		var h mat.SymDense
		HessianMatrix(&h, net, c.loss, X, Y)
		for _, s := range splits {
			var g, r mat.SymDense
			GaussNewtonMatrix(&g, net, c.loss, X, Y, nn.GaussNewton, s)
			testutil.EqualApprox(t, c.name+"/"+s.String(), &g, &h, 0, 1e-12)
			ResidualMatrix(&r, net, c.loss, X, Y, s)
			if m := testutil.MaxAbs(&r); m > 1e-14 {
				t.Errorf("%s/%v: residual at zero residual has max |r| = %g", c.name, s, m)
			}
		}
	}
}

// TestSuite3_HessianMinusGNIsResidual proves the decomposition of thesis
// §3.1.4, H = G + Σ_i Σ_j (∂l_i/∂z_j) ∇²_θ z_j(x_i), with three
// independently computed matrices: the Hessian by the R-operator
// (differentiated backpropagation), the Gauss–Newton matrix from explicit
// jacobians, and the residual by second-order forward passes
// (ResidualMatrix), for every loss and both splits; the R-operator residual
// (NewResidualOperator) agrees too. The residual is checked to be non-negligible (≥ 1e-3·‖H‖) so
// that the test can fail. Tolerance: 1e-11·max|H|.
func TestSuite3_HessianMinusGNIsResidual(t *testing.T) {
	for ci, c := range append(cases[:len(cases):len(cases)], reluCase) {
		net, X, Y := setup(c, 5, uint64(80+ci))
		var h mat.SymDense
		HessianMatrix(&h, net, c.loss, X, Y)
		scale := testutil.MaxAbs(&h)
		for _, s := range splits {
			name := c.name + "/" + s.String()
			var g, r, rop mat.SymDense
			GaussNewtonMatrix(&g, net, c.loss, X, Y, nn.GaussNewton, s)
			ResidualMatrix(&r, net, c.loss, X, Y, s)
			NewResidualOperator(net, c.loss, X, Y, s).Dense(&rop)
			var diff mat.Dense
			diff.Sub(&h, &g)
			testutil.EqualApprox(t, name+": H−G vs residual", &diff, &r, 1e-11*scale, 0)
			testutil.EqualApprox(t, name+": R-op residual vs forward residual", &rop, &r, 1e-11*scale, 0)
			if mat.Norm(&r, 2) < 1e-3*mat.Norm(&h, 2) {
				t.Errorf("%s: residual is negligible (‖r‖ = %g, ‖H‖ = %g): the test cannot fail", name, mat.Norm(&r, 2), mat.Norm(&h, 2))
			}
		}
	}
}
