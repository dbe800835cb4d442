package curvature

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestExactBlock proves ExactBlock against dense references on hand-made
// records: its matrix is DenseBlock of the last record (no averaging: a
// second Update replaces the first); Precondition equals the dense LU solve
// of DenseBlock + λI against vec([∇W ∇b]), unvec'ed; Mul equals DenseBlock
// times vec(v); Scale equals tr/P. Rows of Back in the default layouts
// (one per example, k per example) and with BackExamples. Tolerances 1e-13
// for the matrix, 1e-9 for the solve and 1e-12 for the product, relative to
// the largest entry.
func TestExactBlock(t *testing.T) {
	for _, tc := range []struct {
		name          string
		n, in, out, m int
		examples      bool
		lambda        float64
	}{
		{"one row per example", 12, 3, 2, 12, false, 0.1},
		{"k rows per example", 5, 2, 3, 15, false, 0.01},
		{"BackExamples", 9, 4, 3, 30, true, 1},
		{"undamped, full rank", 40, 2, 2, 40, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b ExactBlock
			b.Update(blockRecord(70, tc.n, tc.in, tc.out, tc.m, tc.examples))
			l := blockRecord(71, tc.n, tc.in, tc.out, tc.m, tc.examples)
			b.Update(l)
			var dense mat.SymDense
			DenseBlock(&dense, l)
			equalApprox(t, "Matrix", b.Matrix(), &dense, 0, 1e-13)
			if err := b.Refresh(tc.lambda); err != nil {
				t.Fatal(err)
			}
			var got mat.Dense
			b.Precondition(&got, l)
			equalApprox(t, "Precondition", &got, denseSolve(t, addDiag(&dense, tc.lambda), paramGrad(l)), 0, 1e-9)
			v := randDense(newRand(9), tc.out, tc.in+1, 1)
			b.Mul(&got, v)
			equalApprox(t, "Mul", &got, denseMul(&dense, v), 0, 1e-12)
			b.Mul(v, v)
			equalApprox(t, "Mul in place", v, &got, 0, 0)
			if w := meanDiag(&dense); math.Abs(b.Scale()-w) > 1e-13*w {
				t.Errorf("Scale = %g, want tr/P = %g", b.Scale(), w)
			}
		})
	}
}
