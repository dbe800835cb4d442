package curvature

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// TestKFACBlock proves KFACBlock against dense references on hand-made
// records: the factors are the moving averages (warm start ε_k =
// min(1 − 1/k, Decay)) of InputFactor over the first BackCover rows of
// Input (the τ1 sub-batch when Back has fewer rows) and OutputFactor;
// Precondition equals the dense solve with the factored Tikhonov form
// (Ā + π√λ I) ⊗ (G + (√λ/π) I), π = sqrt((tr Ā/n_A)/(tr G/n_G)), on both
// the gradient side and the batch side (SolveOuter), which therefore agree;
// Mul equals DenseKFAC(Ā, G) vec(v); Scale equals tr(Ā⊗G)/P. Tolerances:
// factors 1e-13, directions and products 1e-10, relative to the largest
// entry.
func TestKFACBlock(t *testing.T) {
	for _, tc := range averagedBlockCases {
		t.Run(tc.name, func(t *testing.T) {
			b := &KFACBlock{Decay: tc.decay}
			decay := tc.blockDecay()
			var wantA, wantG *mat.SymDense
			l := tc.update(b, 100, func(k int, rec *secondorder.Layer) {
				var a, g mat.SymDense
				InputFactor(&a, rec.Input.Slice(0, rec.BackCover(), 0, tc.in))
				OutputFactor(&g, rec)
				wantA, wantG = blend(wantA, &a, k, decay), blend(wantG, &g, k, decay)
			})
			a, g := b.Factors()
			testutil.EqualApprox(t, "Ā", a, wantA, 0, 1e-13)
			testutil.EqualApprox(t, "G", g, wantG, 0, 1e-13)

			if err := b.Refresh(tc.lambda); err != nil {
				t.Fatal(err)
			}
			na, ng := float64(tc.in+1), float64(tc.out)
			pi := math.Sqrt((mat.Trace(a) / na) / (mat.Trace(g) / ng))
			if math.Abs(b.Pi()-pi) > 1e-14*pi {
				t.Errorf("Pi = %g, want %g", b.Pi(), pi)
			}
			var damped mat.Dense
			s := math.Sqrt(tc.lambda)
			kron.Product(&damped, addDiag(a, pi*s), addDiag(g, s/pi))
			want := denseSolve(t, &damped, paramGrad(l))
			for _, path := range []solvePath{pathAuto, pathGradient, pathBatch} {
				b.path = path
				var got mat.Dense
				b.Precondition(&got, l)
				testutil.EqualApprox(t, "Precondition", &got, want, 0, 1e-10)
			}

			var dense mat.SymDense
			DenseKFAC(&dense, a, g)
			checkMulScale(t, b, &mat.Dense{}, testutil.RandDense(newRand(7), tc.out, tc.in+1, 1), &dense, 1e-10)
		})
	}
}

// TestKFACBlockExactness proves where Ā⊗G must equal the exact block
// (DenseBlock, eq. 3.3.2) and where it must not: for a single example
// (with several rows of Back) the sum of Kronecker products has one term
// and K-FAC is exact (tolerance 1e-13); for several examples with random
// inputs and Back it differs (relative Frobenius distance above 1e-2).
func TestKFACBlockExactness(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n, m  int
		exact bool
	}{
		{"one example", 1, 4, true},
		{"one example, one row", 1, 1, true},
		{"several examples", 8, 8, false},
		{"several examples, k rows each", 5, 15, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := blockRecord(11, tc.n, 3, 2, tc.m, false)
			var b KFACBlock
			b.Update(l)
			a, g := b.Factors()
			var kf, exact mat.SymDense
			DenseKFAC(&kf, a, g)
			DenseBlock(&exact, l)
			if tc.exact {
				testutil.EqualApprox(t, "Ā⊗G vs exact block", &kf, &exact, 0, 1e-13)
			} else if d := testutil.RelDiff(&kf, &exact); d < 1e-2 {
				t.Errorf("Ā⊗G is within %g of the exact block for several examples; the test cannot fail", d)
			}
		})
	}
}
