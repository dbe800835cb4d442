package kron_test

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// TestMul checks MulMat, MulVec and MulCols against the dense product, on
// square and non-square factors, with factors given as Dense, transposes and
// symmetric matrices, and with strided destinations.
func TestMul(t *testing.T) {
	rng := newRand(4)
	for _, s := range shapes {
		for _, k := range []int{1, 3} {
			t.Run(fmt.Sprintf("%dx%d⊗%dx%d/k=%d", s.m, s.n, s.p, s.q, k), func(t *testing.T) {
				a := randDense(rng, s.m, s.n)
				b := randDense(rng, s.p, s.q)
				full := kronDense(a, b)

				// Matrix form: X is q×n, result p×m.
				x := randDense(rng, s.q, s.n)
				var want mat.VecDense
				want.MulVec(full, vecOf(x))
				var y mat.Dense
				kron.MulMat(&y, a, b, x)
				checkVecApprox(t, "MulMat", vecOf(&y), &want, tol)
				if s.p == s.q && s.m == s.n {
					inplace := mat.DenseCopyOf(x)
					kron.MulMat(inplace, a, b, inplace)
					checkApprox(t, "MulMat in place", inplace, &y, tol)
				}

				// Transposed factors: (Aᵀ⊗Bᵀ) vec(Z), Z of size p×m.
				z := randDense(rng, s.p, s.m)
				var wantT mat.VecDense
				wantT.MulVec(full.T(), vecOf(z))
				var yt mat.Dense
				kron.MulMat(&yt, a.T(), b.T(), z)
				checkVecApprox(t, "MulMat transposed", vecOf(&yt), &wantT, tol)

				// Vec form, into a strided destination.
				var got mat.VecDense
				kron.MulVec(&got, a, b, vecOf(x))
				checkVecApprox(t, "MulVec", &got, &want, tol)
				strided := mat.NewDense(s.m*s.p, 2, nil)
				kron.MulVec(strided.ColView(1).(*mat.VecDense), a, b, vecOf(x))
				checkVecApprox(t, "MulVec strided", strided.ColView(1), &want, tol)

				// Columns.
				xs := randDense(rng, s.n*s.q, k)
				var wantCols, cols mat.Dense
				wantCols.Mul(full, xs)
				kron.MulCols(&cols, a, b, xs)
				checkApprox(t, "MulCols", &cols, &wantCols, tol)
				big := mat.NewDense(s.m*s.p+1, k+2, nil)
				view := big.Slice(1, s.m*s.p+1, 1, k+1).(*mat.Dense)
				kron.MulCols(view, a, b, dense(xs.T()).T()) // X as a Transpose: copied
				checkApprox(t, "MulCols strided", view, &wantCols, tol)
			})
		}
	}

	// Symmetric factors (the K-FAC case), F vec(ΔΘ) = vec(G ΔΘ Ā).
	abar := randSPD(rng, 4)
	g := randSPD(rng, 3)
	theta := randDense(rng, 3, 4)
	var want, got, gt, gta mat.Dense
	want.Mul(kronDense(abar, g), vecOf(theta))
	kron.MulMat(&got, abar, g, theta)
	gt.Mul(g, theta)
	gta.Mul(&gt, abar)
	checkVecApprox(t, "MulMat K-FAC", vecOf(&got), want.ColView(0), tol)
	checkApprox(t, "G ΔΘ Ā", &got, &gta, tol)

	a := randDense(rng, 2, 3)
	b := randDense(rng, 4, 5)
	panics(t, "MulMat X shape", func() { kron.MulMat(&mat.Dense{}, a, b, randDense(rng, 3, 5)) })
	panics(t, "MulMat dst shape", func() { kron.MulMat(mat.NewDense(2, 4, nil), a, b, randDense(rng, 5, 3)) })
	panics(t, "MulVec x length", func() { kron.MulVec(&mat.VecDense{}, a, b, testutil.RandVec(rng, 14)) })
	panics(t, "MulCols X rows", func() { kron.MulCols(&mat.Dense{}, a, b, randDense(rng, 14, 2)) })
}
