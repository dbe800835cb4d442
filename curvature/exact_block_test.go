package curvature

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
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
	for _, tc := range []blockCase{
		{"one row per example", 12, 3, 2, 12, false, 0, 0, 2, 0.1},
		{"k rows per example", 5, 2, 3, 15, false, 0, 0, 2, 0.01},
		{"BackExamples", 9, 4, 3, 30, true, 0, 0, 2, 1},
		{"undamped, full rank", 40, 2, 2, 40, false, 0, 0, 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b ExactBlock
			l := tc.update(&b, 69, nil)
			var dense mat.SymDense
			DenseBlock(&dense, l)
			testutil.EqualApprox(t, "Matrix", b.Matrix(), &dense, 0, 1e-13)
			if err := b.Refresh(tc.lambda); err != nil {
				t.Fatal(err)
			}
			var got mat.Dense
			b.Precondition(&got, l)
			testutil.EqualApprox(t, "Precondition", &got, denseSolve(t, addDiag(&dense, tc.lambda), paramGrad(l)), 0, 1e-9)
			checkMulScale(t, &b, &got, testutil.RandDense(newRand(9), tc.out, tc.in+1, 1), &dense, 1e-12)
		})
	}
}
