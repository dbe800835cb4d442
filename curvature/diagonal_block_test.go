package curvature

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// TestDiagonalBlock proves DiagonalBlock against dense references on
// hand-made records: its diagonal equals the diagonal of DenseBlock for
// every layout of Back (one row per example, k per example, BackExamples,
// a τ1 sub-batch), averaged over Updates with ε_k = min(1 − 1/k, Decay);
// Precondition equals the dense solve with diag(d) + λI; Mul equals
// diag(d) vec(v); Scale equals tr/P. Tolerance 1e-13 relative to the
// largest entry (1e-12 for the solve).
func TestDiagonalBlock(t *testing.T) {
	for _, tc := range []struct {
		name          string
		n, in, out, m int
		examples      bool
		backScale     float64
		decay         float64
		updates       int
		lambda        float64
	}{
		{"one row per example", 12, 3, 2, 12, false, 0, 0, 1, 0.1},
		{"k rows per example", 5, 2, 3, 15, false, 0, 0, 1, 0},
		{"BackExamples", 9, 4, 3, 30, true, 0.05, 0, 1, 1},
		{"tau1 sub-batch", 12, 3, 4, 5, false, 0.2, 0, 1, 0.1},
		{"averaged", 8, 3, 2, 16, false, 0, 0.5, 3, 0.1},
		{"default decay", 8, 3, 2, 8, true, 0, 0, 4, 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &DiagonalBlock{Decay: tc.decay}
			var l *secondorder.Layer
			var want *mat.VecDense
			for k := 1; k <= tc.updates; k++ {
				l = blockRecord(uint64(80+k), tc.n, tc.in, tc.out, tc.m, tc.examples)
				l.BackScale = tc.backScale
				b.Update(l)
				var dense mat.SymDense
				DenseBlock(&dense, l)
				p := dense.SymmetricDim()
				d := mat.NewVecDense(p, nil)
				for i := 0; i < p; i++ {
					d.SetVec(i, dense.At(i, i))
				}
				decay := tc.decay
				if decay == 0 {
					decay = DefaultDecay
				}
				if eps := min(1-1/float64(k), decay); k == 1 {
					want = d
				} else {
					want.AddScaledVec(d, eps/(1-eps), want)
					want.ScaleVec(1-eps, want)
				}
			}
			var got mat.VecDense
			b.Diagonal(&got)
			equalApprox(t, "diagonal", &got, want, 0, 1e-13)

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
			equalApprox(t, "Precondition", &dir, denseSolve(t, addDiag(dd, tc.lambda), paramGrad(l)), 0, 1e-12)
			v := randDense(newRand(10), tc.out, tc.in+1, 1)
			b.Mul(&dir, v)
			equalApprox(t, "Mul", &dir, denseMul(dd, v), 0, 1e-13)
			b.Mul(v, v)
			equalApprox(t, "Mul in place", v, &dir, 0, 0)
			if w := meanDiag(dd); math.Abs(b.Scale()-w) > 1e-13*w {
				t.Errorf("Scale = %g, want tr/P = %g", b.Scale(), w)
			}
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
		Grad:  randDense(rng, n, out, 1),
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
				equalApprox(t, "diagonal vs exact direction", &got, &want, 0, 1e-13)
			} else if r := relDiff(&got, &want); r < 1e-2 {
				t.Errorf("diagonal direction within %g of the exact one on a random record; the test cannot fail", r)
			}
		})
	}
}
