package kron_test

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/kron"
)

// TestSolveOuter checks that solving a matrix given as scale·Lᵀ R through
// its factors equals Solve on the formed matrix, for Cholesky and
// factored-Tikhonov factorizations, with fewer and with more rows than the
// factors' sizes.
func TestSolveOuter(t *testing.T) {
	rng := newRand(77)
	for _, sh := range [][3]int{{3, 5, 4}, {20, 5, 4}, {1, 1, 1}, {7, 6, 2}} {
		m, na, nb := sh[0], sh[1], sh[2]
		a, b := randSPD(rng, na), randSPD(rng, nb)
		l, r := randDense(rng, m, nb), randDense(rng, m, na)
		var x mat.Dense
		x.Mul(l.T(), r)
		x.Scale(0.3, &x)
		var ck kron.CholeskyKron
		if err := ck.Factorize(a, b); err != nil {
			t.Fatal(err)
		}
		var want, got mat.Dense
		ck.Solve(&want, &x)
		ck.SolveOuter(&got, 0.3, mat.DenseCopyOf(l), mat.DenseCopyOf(r))
		if !mat.EqualApprox(&got, &want, 1e-10*(1+mat.Norm(&want, math.Inf(1)))) {
			t.Errorf("%v: CholeskyKron.SolveOuter differs from Solve", sh)
		}
		var ft kron.FactoredTikhonov
		if err := ft.Factorize(a, b, 0.1); err != nil {
			t.Fatal(err)
		}
		want.Reset()
		got.Reset()
		ft.Solve(&want, &x)
		ft.SolveOuter(&got, 0.3, mat.DenseCopyOf(l), mat.DenseCopyOf(r))
		if !mat.EqualApprox(&got, &want, 1e-10*(1+mat.Norm(&want, math.Inf(1)))) {
			t.Errorf("%v: FactoredTikhonov.SolveOuter differs from Solve", sh)
		}
	}
	var ck kron.CholeskyKron
	if err := ck.Factorize(randSPD(rng, 1001), randSPD(rng, 1000)); err != nil {
		t.Fatal(err)
	}
	if !ck.UseOuter(100) || ck.UseOuter(2000) {
		t.Error("UseOuter: want the factored form at 100 rows and not at 2000 for a 1001, 1000 layer")
	}
}
