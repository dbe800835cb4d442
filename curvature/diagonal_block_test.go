package curvature

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
)

// TestDiagonalBlock proves DiagonalBlock against dense references on
// hand-made records: its diagonal equals the diagonal of DenseBlock for
// every layout of Back (one row per example, k per example, BackExamples,
// a τ1 sub-batch), averaged over Updates with ε_k = min(1 − 1/k, Decay);
// Precondition equals the dense solve with diag(d) + λI; Mul equals
// diag(d) vec(v); Scale equals tr/P. Tolerance 1e-13 relative to the
// largest entry (1e-12 for the solve).
func TestDiagonalBlock(t *testing.T) {
	for _, tc := range averagedBlockCases {
		t.Run(tc.name, func(t *testing.T) {
			b := &DiagonalBlock{Decay: tc.decay}
			decay := tc.blockDecay()
			var want *mat.VecDense
			l := tc.update(b, 80, func(k int, rec *secondorder.Layer) {
				var dense mat.SymDense
				DenseBlock(&dense, rec)
				p := dense.SymmetricDim()
				d := mat.NewVecDense(p, nil)
				for i := 0; i < p; i++ {
					d.SetVec(i, dense.At(i, i))
				}
				if eps := min(1-1/float64(k), decay); k == 1 {
					want = d
				} else {
					want.AddScaledVec(d, eps/(1-eps), want)
					want.ScaleVec(1-eps, want)
				}
			})
			var got mat.VecDense
			b.Diagonal(&got)
			testutil.EqualApprox(t, "diagonal", &got, want, 0, 1e-13)

			if err := b.Refresh(tc.lambda); err != nil {
				t.Fatal(err)
			}
			p := want.Len()
			dd := mat.NewDiagDense(p, nil)
			for i := 0; i < p; i++ {
				dd.SetDiag(i, want.AtVec(i))
			}
			var dir mat.Dense
			b.Precondition(&dir, l)
			testutil.EqualApprox(t, "Precondition", &dir, denseSolve(t, addDiag(dd, tc.lambda), paramGrad(l)), 0, 1e-12)
			checkMulScale(t, b, &dir, testutil.RandDense(newRand(10), tc.out, tc.in+1, 1), dd, 1e-13)
		})
	}
}

// TestDiagonalBlockExactness proves where the diagonal preconditioner must
// equal the exact block's and where it must not. The exact block is
// diagonal when the inputs are ±e_c (so that Σ h̃_c h̃_c' = 0 for c ≠ c' and
// Σ h_c = 0 within each output's examples) and each row of Back has one
// non-zero entry (g_o g_o' = 0 for o ≠ o'): then Precondition equals
// ExactBlock's (tolerance 1e-13). With random records the block is not
// diagonal and the directions differ (relative distance above 1e-2).
func TestDiagonalBlockExactness(t *testing.T) {
	const in, out = 3, 2
	rng := newRand(90)
	n := 2 * in * out
	l := &secondorder.Layer{
		W:     mat.NewDense(out, in, nil),
		B:     mat.NewVecDense(out, nil),
		Input: mat.NewDense(n, in, nil),
		Grad:  testutil.RandDense(rng, n, out, 1),
		Back:  mat.NewDense(n, out, nil),
	}
	i := 0
	for o := 0; o < out; o++ {
		for c := 0; c < in; c++ {
			g := 0.5 + rng.Float64()
			for _, sign := range []float64{1, -1} {
				l.Input.Set(i, c, sign)
				l.Back.Set(i, o, g)
				i++
			}
		}
	}
	l.ComputeParamGrads()
	random := blockRecord(91, 10, in, out, 10, false)
	for _, tc := range []struct {
		name     string
		l        *secondorder.Layer
		diagonal bool
	}{
		{"diagonal block", l, true},
		{"random record", random, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d DiagonalBlock
			var e ExactBlock
			for _, b := range []Block{&d, &e} {
				b.Update(tc.l)
				if err := b.Refresh(0.01); err != nil {
					t.Fatal(err)
				}
			}
			var got, want mat.Dense
			d.Precondition(&got, tc.l)
			e.Precondition(&want, tc.l)
			if tc.diagonal {
				testutil.EqualApprox(t, "diagonal vs exact direction", &got, &want, 0, 1e-13)
			} else if r := testutil.RelDiff(&got, &want); r < 1e-2 {
				t.Errorf("diagonal direction within %g of the exact one on a random record; the test cannot fail", r)
			}
		})
	}
}
