package kron_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// layerStats returns, for a batch H (n×nin, one example per row) and the
// per-example gradients Γ (n×nout), S = HᵀH/n, μ, C = S − μμᵀ and the
// gradient in matrix form [∇W ∇b] = (1/n) [ΓᵀH Γᵀ1].
func layerStats(rng *rand.Rand, n, nin, nout int) (s, c *mat.SymDense, mu *mat.VecDense, h, gam, grad *mat.Dense) {
	h = randDense(rng, n, nin)
	// Offset the inputs so that the mean matters.
	for j := 0; j < nin; j++ {
		for i := 0; i < n; i++ {
			h.Set(i, j, h.At(i, j)+float64(j+1)*0.7)
		}
	}
	gam = randDense(rng, n, nout)
	s = new(mat.SymDense)
	s.SymOuterK(1/float64(n), h.T())
	mu = new(mat.VecDense)
	mu.MulVec(h.T(), mat.NewVecDense(n, ones(n)))
	mu.ScaleVec(1/float64(n), mu)
	c = mat.NewSymDense(nin, nil)
	c.SymRankOne(s, -1, mu)
	ht := mat.NewDense(n, nin+1, nil)
	ht.Slice(0, n, 0, nin).(*mat.Dense).Copy(h)
	for i := 0; i < n; i++ {
		ht.Set(i, nin, 1)
	}
	grad = new(mat.Dense)
	grad.Mul(gam.T(), ht)
	grad.Scale(1/float64(n), grad)
	return s, c, mu, h, gam, grad
}

func ones(n int) []float64 {
	o := make([]float64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// augmentedDense returns [[S + λ'I, μ], [μᵀ, 1 + λ']].
func augmentedDense(s mat.Symmetric, mu mat.Vector, damping float64) *mat.Dense {
	n := s.SymmetricDim()
	m := mat.NewDense(n+1, n+1, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			m.Set(i, j, s.At(i, j))
		}
		m.Set(i, i, m.At(i, i)+damping)
		m.Set(i, n, mu.AtVec(i))
		m.Set(n, i, mu.AtVec(i))
	}
	m.Set(n, n, 1+damping)
	return m
}

// TestAugmentedInverse checks the blockwise inverse of the damped augmented
// matrix against dense inverses and solves.
func TestAugmentedInverse(t *testing.T) {
	rng := newRand(10)
	for _, sz := range []struct{ n, nin, nout int }{{20, 1, 1}, {20, 3, 2}, {30, 5, 4}, {40, 5, 1}} {
		for _, damping := range []float64{0, 1e-3, 0.5} {
			t.Run(fmt.Sprintf("n=%d/in=%d/out=%d/λ'=%g", sz.n, sz.nin, sz.nout, damping), func(t *testing.T) {
				s, c, mu, _, _, grad := layerStats(rng, sz.n, sz.nin, sz.nout)
				var ai kron.AugmentedInverse
				if err := ai.Factorize(s, mu, damping); err != nil {
					t.Fatal(err)
				}
				full := augmentedDense(s, mu, damping)
				var aug, inv mat.SymDense
				ai.AugmentedTo(&aug)
				checkApprox(t, "AugmentedTo", &aug, full, tol)
				ai.InverseTo(&inv)
				checkApprox(t, "InverseTo", &inv, denseInverse(t, full), 1e-9)

				// [∇W ∇b] M⁻¹ = (M⁻¹ [∇W ∇b]ᵀ)ᵀ by a dense solve.
				var want mat.Dense
				if err := want.Solve(full, grad.T()); err != nil {
					t.Fatal(err)
				}
				var got mat.Dense
				ai.MulRight(&got, grad)
				checkApprox(t, "MulRight", &got, want.T(), 1e-9)
				inplace := mat.DenseCopyOf(grad)
				ai.MulRight(inplace, inplace)
				checkApprox(t, "MulRight in place", inplace, &got, 1e-12)

				// Split weights and bias, strided bias vectors.
				gw := mat.DenseCopyOf(grad.Slice(0, sz.nout, 0, sz.nin))
				gb := grad.ColView(sz.nin)
				var dw mat.Dense
				var db mat.VecDense
				ai.Precondition(&dw, &db, gw, gb)
				checkApprox(t, "Precondition ΔW", &dw, got.Slice(0, sz.nout, 0, sz.nin), 1e-12)
				checkVecApprox(t, "Precondition Δb", &db, got.ColView(sz.nin), 1e-12)

				// From the covariance.
				var ac kron.AugmentedInverse
				if err := ac.FactorizeCov(c, mu, damping); err != nil {
					t.Fatal(err)
				}
				var gotc mat.Dense
				ac.MulRight(&gotc, grad)
				checkApprox(t, "FactorizeCov MulRight", &gotc, &got, 1e-9)

				// A Kronecker product with αI_out and Tikhonov λ (§3.4.2):
				// (M₀⊗αI + λI)⁻¹ vec(∇Θ) = (1/α) vec(∇Θ M_{λ/α}⁻¹).
				const alpha = 2.5
				lambda := damping * alpha
				eye := mat.NewDiagDense(sz.nout, ones(sz.nout))
				var aI mat.Dense
				aI.Scale(alpha, eye)
				big := addDiag(kronDense(augmentedDense(s, mu, 0), &aI), lambda)
				wantVec := denseSolve(t, big, vecOf(grad))
				var scaled mat.Dense
				scaled.Scale(1/alpha, &got)
				checkVecApprox(t, "§3.4.2 preconditioner", vecOf(&scaled), wantVec, 1e-9)
			})
		}
	}
}

// TestAugmentedThesis checks the undamped updates against eqs. 3.3.3 and
// the corrected 3.3.4 of the thesis, written with the per-example data:
//
//	ΔW = (1/n) Σ_j ∇_{a_j} (h_j − μ)ᵀ C⁻¹,   Δb = (1/n) Σ_j ∇_{a_j} − ΔW μ.
func TestAugmentedThesis(t *testing.T) {
	rng := newRand(11)
	const n, nin, nout = 50, 4, 3
	s, c, mu, h, gam, grad := layerStats(rng, n, nin, nout)
	var ai kron.AugmentedInverse
	if err := ai.Factorize(s, mu, 0); err != nil {
		t.Fatal(err)
	}
	var got mat.Dense
	ai.MulRight(&got, grad)

	hc := mat.DenseCopyOf(h)
	for i := 0; i < n; i++ {
		for j := 0; j < nin; j++ {
			hc.Set(i, j, hc.At(i, j)-mu.AtVec(j))
		}
	}
	var gh, dw mat.Dense
	gh.Mul(gam.T(), hc)
	gh.Scale(1/float64(n), &gh)
	dw.Mul(&gh, denseInverse(t, c))
	var db, dwmu mat.VecDense
	db.MulVec(gam.T(), mat.NewVecDense(n, ones(n)))
	db.ScaleVec(1/float64(n), &db)
	dwmu.MulVec(&dw, mu)
	db.SubVec(&db, &dwmu)
	checkApprox(t, "ΔW (3.3.3)", got.Slice(0, nout, 0, nin), &dw, 1e-9)
	checkVecApprox(t, "Δb (3.3.4 corrected)", got.ColView(nin), &db, 1e-9)

	// The thesis's closed-form inverse [[C⁻¹, −C⁻¹μ], [−μᵀC⁻¹, 1 + μᵀC⁻¹μ]].
	ci := denseInverse(t, c)
	var cimu mat.VecDense
	cimu.MulVec(ci, mu)
	want := mat.NewDense(nin+1, nin+1, nil)
	want.Slice(0, nin, 0, nin).(*mat.Dense).Copy(ci)
	for i := 0; i < nin; i++ {
		want.Set(i, nin, -cimu.AtVec(i))
		want.Set(nin, i, -cimu.AtVec(i))
	}
	want.Set(nin, nin, 1+mat.Dot(mu, &cimu))
	var inv mat.SymDense
	ai.InverseTo(&inv)
	checkApprox(t, "thesis inverse", &inv, want, 1e-9)
}

// TestAugmentedNotPD checks that a singular covariance (fewer examples than
// inputs) fails without damping, and that the retry policy raises it.
func TestAugmentedNotPD(t *testing.T) {
	rng := newRand(12)
	s, c, mu, _, _, grad := layerStats(rng, 3, 6, 2)
	var ai kron.AugmentedInverse
	checkFactorError(t, ai.Factorize(s, mu, 0), kron.ErrNotPositiveDefinite, "C'")
	checkFactorError(t, ai.FactorizeCov(c, mu, 0), kron.ErrNotPositiveDefinite, "C'")
	panics(t, "MulRight after failure", func() { ai.MulRight(&mat.Dense{}, grad) })

	// Indefinite S: eigenvalue −0.01 in C, so C' needs λ' ≳ 0.01.
	cind := symWithEigen(rng, []float64{1, -0.01, 2, 0.5})
	mu4 := testutil.RandVec(rng, 4)
	fe := checkFactorError(t, ai.FactorizeCov(cind, mu4, 1e-5), kron.ErrNotPositiveDefinite, "C'")
	if fe.Damping != 1e-5 {
		t.Errorf("FactorError.Damping = %v, want 1e-5", fe.Damping)
	}
	ai.Retry = kron.Retry{Tries: 6}
	if err := ai.FactorizeCov(cind, mu4, 1e-5); err != nil {
		t.Fatal(err)
	}
	// The damping used is the first of 1e-5·10^k for which C' is positive
	// definite.
	cprime := func(d float64) *mat.SymDense {
		cp := mat.NewSymDense(4, nil)
		cp.SymRankOne(cind, d/(1+d), mu4)
		for i := 0; i < 4; i++ {
			cp.SetSym(i, i, cp.At(i, i)+d)
		}
		return cp
	}
	var chol mat.Cholesky
	d := ai.Damping()
	if d <= 1e-5 || !chol.Factorize(cprime(d)) || chol.Factorize(cprime(d/10)) {
		t.Errorf("retry settled on λ' = %v", d)
	}
	var sfull mat.SymDense
	sfull.SymRankOne(cind, 1, mu4)
	full := augmentedDense(&sfull, mu4, ai.Damping())
	var inv mat.SymDense
	ai.InverseTo(&inv)
	checkApprox(t, "InverseTo after retry", &inv, denseInverse(t, full), 1e-8)
	panics(t, "MulRight shape", func() { ai.MulRight(&mat.Dense{}, randDense(rng, 2, 4)) })
	panics(t, "μ length", func() { _ = ai.Factorize(cind, testutil.RandVec(rng, 3), 0) })
}
