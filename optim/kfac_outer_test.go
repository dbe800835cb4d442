package optim

import (
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
	"gonum.org/v1/gonum/mat"
)

// TestKFACBatchSideSolveMatchesFactorSide checks that the update computed
// from the batch, (1/n) (Grad G_d⁻¹)ᵀ ([H 1] Ā_d⁻¹), used when the batch is
// smaller than the layer, equals the update from the formed gradient,
// G_d⁻¹ [∇W ∇b] Ā_d⁻¹ (taken when the record has no Grad), over a few
// steps with momentum. Tolerance 1e-10 relative.
func TestKFACBatchSideSolveMatchesFactorSide(t *testing.T) {
	const n, in, out = 3, 8, 10
	rng := rand.New(rand.NewPCG(12, 13))
	mk := func() *secondorder.Layer {
		r := rand.New(rand.NewPCG(5, 6))
		l := &secondorder.Layer{W: randDense(r, out, in), B: testutil.RandVec(r, out)}
		return l
	}
	a, b := mk(), mk()
	ka := &KFAC{Rules: Rules{Momentum: 0.5, Damping: 0.3}}
	kb := &KFAC{Rules: Rules{Momentum: 0.5, Damping: 0.3}}
	for step := 0; step < 4; step++ {
		h := randDense(rng, n, in)
		g := randDense(rng, n, out)
		back := randDense(rng, n, out)
		for _, l := range []*secondorder.Layer{a, b} {
			l.Input, l.Grad, l.Back = h, g, back
			l.GradW, l.GradB = nil, nil
			l.ComputeParamGrads()
		}
		setQuadraticRisk(a) // the default norm constraint reads it, and binds
		b.Risk = a.Risk
		b.Grad = nil // factor-side path
		if err := ka.Step([]*secondorder.Layer{a}); err != nil {
			t.Fatal(err)
		}
		if err := kb.Step([]*secondorder.Layer{b}); err != nil {
			t.Fatal(err)
		}
		if !mat.EqualApprox(a.W, b.W, 1e-10*(1+mat.Norm(b.W, 1))) || !mat.EqualApprox(a.B, b.B, 1e-10*(1+mat.Norm(b.B, 1))) {
			t.Fatalf("step %d: batch-side and factor-side updates differ", step)
		}
	}
	// The block takes the batch side when the record has Grad and Input of
	// n rows each and the factorization says that is cheaper
	// (kron.FactoredTikhonov.UseOuter, which depends on the factor sizes
	// only); check both conditions, on a factorization of the same factors.
	na, ng := a.Input.RawMatrix().Rows, a.Grad.RawMatrix().Rows
	fa, fg := ka.Factors(0)
	var ft kron.FactoredTikhonov
	if err := ft.Factorize(fa, fg, 0.3*mat.Trace(fa)/(in+1)*mat.Trace(fg)/out); err != nil {
		t.Fatal(err)
	}
	if na != n || ng != n || !ft.UseOuter(n) {
		t.Fatal("the batch-side path was not taken")
	}
	if b.Grad != nil {
		t.Fatal("the factor-side record has Grad")
	}
}
