package kron

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Vec writes vec(X) into dst: the columns of the r×c matrix X stacked into a
// vector of length rc, column-major as in the thesis (§3.3.1), so that
// dst[j·r+i] = X[i, j]. An empty dst is resized; otherwise it must have
// length rc.
func Vec(dst *mat.VecDense, x mat.Matrix) {
	r, c := x.Dims()
	reuseVec(dst, r*c, "Vec")
	for j := 0; j < c; j++ {
		for i := 0; i < r; i++ {
			dst.SetVec(j*r+i, x.At(i, j))
		}
	}
}

// Unvec is the inverse of Vec: it writes into dst the r×c matrix X with
// vec(X) = v, that is X[i, j] = v[j·r+i]. v must have length rc. An empty dst
// is resized; otherwise it must be r×c.
func Unvec(dst *mat.Dense, v mat.Vector, r, c int) {
	if r <= 0 || c <= 0 {
		panic(fmt.Sprintf("kron: Unvec: shape %d×%d, want positive sizes", r, c))
	}
	checkLen(v, r*c, "Unvec", "v")
	reuseDense(dst, r, c, "Unvec")
	for j := 0; j < c; j++ {
		for i := 0; i < r; i++ {
			dst.Set(i, j, v.AtVec(j*r+i))
		}
	}
}
