// Package matutil holds the small matrix helpers that several packages of
// the module share without exporting them: sizing of destinations, the
// symmetric part of a square matrix, and raw access to rows.
//
// The helpers that panic take the name of the calling package (pkg) and of
// the operation (op), and start their messages "pkg: op: ", so that a
// caller's panics read as its own, e.g. "curvature: Mean: destination has
// length 3, want 4".
package matutil

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// ReuseSym makes an empty dst n×n and panics if dst is nil or a non-empty
// dst has another size.
func ReuseSym(pkg string, dst *mat.SymDense, n int, op string) {
	if dst == nil {
		panic(fmt.Sprintf("%s: %s: nil destination", pkg, op))
	}
	if dst.IsEmpty() {
		dst.ReuseAsSym(n)
		return
	}
	if d := dst.SymmetricDim(); d != n {
		panic(fmt.Sprintf("%s: %s: destination is %d×%d, want %d×%d", pkg, op, d, d, n, n))
	}
}

// ReuseVec makes an empty dst of length n and panics if dst is nil or a
// non-empty dst has another length.
func ReuseVec(pkg string, dst *mat.VecDense, n int, op string) {
	if dst == nil {
		panic(fmt.Sprintf("%s: %s: nil destination", pkg, op))
	}
	if dst.IsEmpty() {
		dst.ReuseAsVec(n)
		return
	}
	if dst.Len() != n {
		panic(fmt.Sprintf("%s: %s: destination has length %d, want %d", pkg, op, dst.Len(), n))
	}
}

// SymFromDense writes dst = (m + mᵀ)/2 for a square m, sizing dst as
// ReuseSym does.
func SymFromDense(pkg string, dst *mat.SymDense, m *mat.Dense, op string) {
	p, c := m.Dims()
	if p != c {
		panic(fmt.Sprintf("%s: %s: %d×%d is not square", pkg, op, p, c))
	}
	ReuseSym(pkg, dst, p, op)
	for i := 0; i < p; i++ {
		for j := i; j < p; j++ {
			dst.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
}

// AsDense returns m itself when it is a *mat.Dense, and a copy otherwise.
func AsDense(m mat.Matrix) *mat.Dense {
	if d, ok := m.(*mat.Dense); ok {
		return d
	}
	return mat.DenseCopyOf(m)
}

// Row returns row i of m as a slice aliasing m's data.
func Row(m *mat.Dense, i int) []float64 {
	raw := m.RawMatrix()
	return raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
}
