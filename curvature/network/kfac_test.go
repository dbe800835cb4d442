package network

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// TestSuite6_KFACExactOneExample proves that K-FAC (thesis §3.5.1,
// Martens & Grosse 2015) is exact for a single example: with n = 1 the
// expectation of the Kronecker product is the Kronecker product of the
// expectations, so curvature.InputFactor ⊗ OutputFactor (DenseKFAC) equals
// curvature.DenseBlock for every layer, loss and exact estimator (and
// InputFactor ⊗ EmpiricalOutputFactor equals DenseEmpiricalBlock). Tolerance: 1e-12·max|block| + 1e-15.
func TestSuite6_KFACExactOneExample(t *testing.T) {
	for ci, c := range append(cases[:len(cases):len(cases)], reluCase) {
		net, X, Y := setup(c, 1, uint64(110+ci))
		for _, bp := range []Backprop{{Estimator: GGNExact}, {Estimator: GGNExact, Split: nn.SplitOutputs}, {Estimator: FisherExact}} {
			bp.Fill(net, c.loss, X, Y)
			for l, rec := range net.Records() {
				name := fmt.Sprintf("%s/%v/%v/layer %d", c.name, bp.Estimator, bp.Split, l)
				var a, g, kfac, exact mat.SymDense
				curvature.InputFactor(&a, rec.Input)
				curvature.OutputFactor(&g, rec)
				curvature.DenseKFAC(&kfac, &a, &g)
				curvature.DenseBlock(&exact, rec)
				testutil.EqualApprox(t, name, &kfac, &exact, 1e-15, 1e-12)

				var ge, emp mat.SymDense
				kfac.Reset()
				curvature.EmpiricalOutputFactor(&ge, rec)
				curvature.DenseKFAC(&kfac, &a, &ge)
				curvature.DenseEmpiricalBlock(&emp, rec)
				testutil.EqualApprox(t, name+"/empirical", &kfac, &emp, 1e-15, 1e-12)
			}
		}
	}
}

// kfacAndExact returns the K-FAC approximation Ā ⊗ G of the record's block
// (InputFactor of its Input, OutputFactor) and the exact block
// (DenseBlock), both dense.
func kfacAndExact(rec *secondorder.Layer) (kfac, exact *mat.SymDense) {
	var a, g mat.SymDense
	curvature.InputFactor(&a, rec.Input)
	curvature.OutputFactor(&g, rec)
	kfac, exact = &mat.SymDense{}, &mat.SymDense{}
	curvature.DenseKFAC(kfac, &a, &g)
	curvature.DenseBlock(exact, rec)
	return kfac, exact
}

// TestSuite6_KFACExactDeepLinear proves that K-FAC is exact for a deep
// linear network (identity activations) with the quadratic loss: the
// jacobian J_{a_l} of the output with respect to every layer's
// pre-activation is the same matrix for every example and D = 2I, so the
// output-side factor J_aᵀ D J_a does not depend on the example and
// (1/n) Σ_i h̃_i h̃_iᵀ ⊗ G = Ā ⊗ G, for every layer, for the exact GN and
// the true Fisher. Tolerance: 1e-12·max|block| + 1e-15.
func TestSuite6_KFACExactDeepLinear(t *testing.T) {
	c := netCase{"deep linear", []int{3, 4, 3, 2}, []nn.Activation{nn.Identity{}, nn.Identity{}, nn.Identity{}}, nn.Quadratic{}}
	net, X, Y := setup(c, 7, 120)
	for _, bp := range []Backprop{{Estimator: GGNExact}, {Estimator: FisherExact}} {
		bp.Fill(net, c.loss, X, Y)
		for l, rec := range net.Records() {
			kfac, exact := kfacAndExact(rec)
			testutil.EqualApprox(t, fmt.Sprintf("%v/layer %d", bp.Estimator, l), kfac, exact, 1e-15, 1e-12)
		}
	}
}

// TestSuite6_KFACDiffersInGeneral proves that the K-FAC approximation is
// an approximation: for nonlinear networks with several examples, Ā ⊗ G
// differs from the exact block (relative Frobenius difference > 1e-3) at
// every layer, so the exactness tests above can fail. The one exception is
// again one where K-FAC must be exact: the output layer of the quadratic
// loss on an identity output, whose output-side factor is D = 2I for every
// example (checked equal to 1e-12).
func TestSuite6_KFACDiffersInGeneral(t *testing.T) {
	for ci, c := range cases {
		net, X, Y := setup(c, 6, uint64(130+ci))
		bp := Backprop{Estimator: GGNExact}
		bp.Fill(net, c.loss, X, Y)
		for l, rec := range net.Records() {
			kfac, exact := kfacAndExact(rec)
			_, quadratic := c.loss.(nn.Quadratic)
			if _, linear := c.acts[l].(nn.Identity); quadratic && linear && l == len(c.acts)-1 {
				testutil.EqualApprox(t, fmt.Sprintf("%s/output layer", c.name), kfac, exact, 1e-15, 1e-12)
				continue
			}
			if d := testutil.RelDiff(kfac, exact); d < 1e-3 {
				t.Errorf("%s/layer %d: K-FAC agrees with the exact block to %g", c.name, l, d)
			}
		}
	}
}
