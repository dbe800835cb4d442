package curvature

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
)

// acpCase is a row of TestACPBlock: records of n examples with one row of
// Back each (m = n), given to a block with a fixed α alpha (0: the
// heuristic) after their inputs are shifted by shift, and the tolerance of
// the directions.
type acpCase struct {
	blockCase
	alpha, shift, tol float64
}

// TestACPBlock proves ACPBlock against dense references on hand-made
// records. The blended Ā equals the linear blend of the InputFactor of each
// Update with weights ε_k = min(1 − 1/k, Decay) (Decay 0: the last record
// alone, algorithm 3), which checks the covariance merge, also at a mean far
// from zero. α_t is MaxSquaredGrad of the record (or the fixed Alpha).
// Precondition equals the dense solve with DenseACP(Ā, n_out, α_t,
// λ·α_t/α_r), the damped block of §3.4.2 with the damping carried by the
// factorization of the last refresh — at the refresh (α_t = α_r) and after
// SetAlpha on another minibatch (α_t ≠ α_r) — on the gradient side and the
// input side, which therefore agree. Mul equals DenseACP(Ā, n_out, α_t, 0)
// vec(v) and Scale its trace over P. Tolerances 1e-10 relative to the
// largest entry (1e-8 for the shifted mean).
func TestACPBlock(t *testing.T) {
	for _, tc := range []acpCase{
		{blockCase{"heuristic α, one update", 12, 4, 3, 12, false, 0, 0, 1, 0.1}, 0, 0, 1e-10},
		{blockCase{"no averaging", 12, 4, 3, 12, false, 0, 0, 3, 0.01}, 0, 0, 1e-10},
		{blockCase{"warm start", 10, 3, 5, 10, false, 0, 0.5, 3, 0.1}, 0, 0, 1e-10},
		{blockCase{"decay 0.9", 15, 5, 2, 15, false, 0, 0.9, 4, 1}, 0, 0, 1e-10},
		{blockCase{"fixed α", 9, 3, 4, 9, false, 0, 0.8, 2, 0.1}, 0.7, 0, 1e-10},
		{blockCase{"mean 100", 20, 3, 3, 20, false, 0, 0.5, 2, 0.1}, 0, 100, 1e-8},
		{blockCase{"small batch, wide layer", 6, 25, 30, 6, false, 0, 0, 1, 0.1}, 0, 0, 1e-10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &ACPBlock{Alpha: tc.alpha, Decay: tc.decay}
			var wantA *mat.SymDense
			l := tc.update(b, 200, func(k int, rec *secondorder.Layer) {
				rec.Input.Apply(func(_, _ int, v float64) float64 { return v + tc.shift }, rec.Input)
				rec.ComputeParamGrads()
				var a mat.SymDense
				InputFactor(&a, rec.Input)
				wantA = blend(wantA, &a, k, tc.decay)
			})
			var a mat.SymDense
			b.InputFactor(&a)
			testutil.EqualApprox(t, "Ā", &a, wantA, 0, 1e-13*(1+tc.shift*tc.shift))
			alpha := tc.alpha
			if alpha == 0 {
				alpha = MaxSquaredGrad(l.Grad)
			}
			if b.CurrentAlpha() != alpha {
				t.Fatalf("α_t = %g, want %g", b.CurrentAlpha(), alpha)
			}
			if err := b.Refresh(tc.lambda); err != nil {
				t.Fatal(err)
			}
			if b.RefreshAlpha() != alpha || b.Pending() {
				t.Fatalf("after Refresh: α_r = %g (want %g), pending %v", b.RefreshAlpha(), alpha, b.Pending())
			}

			// At the refresh, and on a later minibatch with its own α.
			later := blockRecord(300, tc.n, tc.in, tc.out, tc.n, false)
			later.Grad.Scale(3, later.Grad)
			later.ComputeParamGrads()
			for _, rec := range []*secondorder.Layer{l, later} {
				b.SetAlpha(rec)
				at := tc.alpha
				if at == 0 {
					at = MaxSquaredGrad(rec.Grad)
				}
				var damped mat.SymDense
				DenseACP(&damped, &a, tc.out, at, tc.lambda*at/alpha)
				want := denseSolve(t, &damped, paramGrad(rec))
				for _, path := range []solvePath{pathAuto, pathGradient, pathBatch} {
					b.path = path
					var got mat.Dense
					b.Precondition(&got, rec)
					testutil.EqualApprox(t, "Precondition", &got, want, 0, tc.tol)
				}

				var dense mat.SymDense
				DenseACP(&dense, &a, tc.out, at, 0)
				checkMulScale(t, b, &mat.Dense{}, testutil.RandDense(newRand(8), tc.out, tc.in+1, 1), &dense, 1e-12)
			}
		})
	}
}

// TestACPBlockZeroAlpha checks the layer whose Grad is all zero (heuristic
// α = 0): Refresh returns nil without factorizing, the block is not Ready
// and its statistics stay Pending; a refresh at a minibatch with a non-zero
// gradient then factorizes; a later minibatch with α_t = 0 gets a zero
// direction.
func TestACPBlockZeroAlpha(t *testing.T) {
	l := blockRecord(50, 10, 3, 2, 10, false)
	l.Grad.Zero()
	l.ComputeParamGrads()
	var b ACPBlock
	b.Update(l)
	if err := b.Refresh(0.1); err != nil || b.Ready() || !b.Pending() {
		t.Fatalf("Refresh at α = 0: err %v, ready %v, pending %v; want nil, false, true", err, b.Ready(), b.Pending())
	}
	if b.Scale() != 1 {
		t.Errorf("Scale at α = 0: %g, want 1", b.Scale())
	}
	g := blockRecord(51, 10, 3, 2, 10, false)
	b.SetAlpha(g)
	if err := b.Refresh(0.1); err != nil || !b.Ready() || b.Pending() {
		t.Fatalf("Refresh at α > 0: err %v, ready %v, pending %v; want nil, true, false", err, b.Ready(), b.Pending())
	}
	b.SetAlpha(l)
	dst := testutil.RandDense(newRand(52), 2, 4, 1)
	b.Precondition(dst, l)
	testutil.EqualApprox(t, "direction at α_t = 0", dst, mat.NewDense(2, 4, nil), 0, 0)
}

// TestACPBlockExactness proves where Ā ⊗ αI must equal the exact block
// (DenseBlock, eq. 3.3.2) and where it must not: when every example's
// output-side curvature is exactly αI (Back holds √α e_o for every output
// o of every example, BackScale 1/n) the block is Ā ⊗ αI (tolerance
// 1e-13); with random Back it differs (relative Frobenius distance above
// 1e-2).
func TestACPBlockExactness(t *testing.T) {
	const n, in, out, alpha = 7, 3, 4, 0.6
	l := blockRecord(60, n, in, out, n*out, false)
	b := ACPBlock{Alpha: alpha}
	b.Update(l)
	var a, acp, exact mat.SymDense
	b.InputFactor(&a)
	DenseACP(&acp, &a, out, alpha, 0)

	l.Back.Zero()
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			l.Back.Set(i*out+o, o, math.Sqrt(alpha))
		}
	}
	DenseBlock(&exact, l)
	testutil.EqualApprox(t, "Ā⊗αI vs exact block with G = αI", &acp, &exact, 0, 1e-13)

	l.Back = testutil.RandDense(newRand(61), n*out, out, 1)
	DenseBlock(&exact, l)
	if d := testutil.RelDiff(&acp, &exact); d < 1e-2 {
		t.Errorf("Ā⊗αI is within %g of the exact block for random Back; the test cannot fail", d)
	}
}
