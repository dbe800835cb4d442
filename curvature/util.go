package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// reuseSym makes an empty dst n×n and panics if a non-empty dst has another
// size.
func reuseSym(dst *mat.SymDense, n int, op string) {
	if dst == nil {
		panic(fmt.Sprintf("curvature: %s: nil destination", op))
	}
	if dst.IsEmpty() {
		dst.ReuseAsSym(n)
		return
	}
	if d := dst.SymmetricDim(); d != n {
		panic(fmt.Sprintf("curvature: %s: destination is %d×%d, want %d×%d", op, d, d, n, n))
	}
}

// reuseVec makes an empty dst of length n and panics if a non-empty dst has
// another length.
func reuseVec(dst *mat.VecDense, n int, op string) {
	if dst == nil {
		panic(fmt.Sprintf("curvature: %s: nil destination", op))
	}
	if dst.IsEmpty() {
		dst.ReuseAsVec(n)
		return
	}
	if dst.Len() != n {
		panic(fmt.Sprintf("curvature: %s: destination has length %d, want %d", op, dst.Len(), n))
	}
}

// asDense returns m itself when it is a *mat.Dense, and a copy otherwise.
func asDense(m mat.Matrix) *mat.Dense {
	if d, ok := m.(*mat.Dense); ok {
		return d
	}
	return mat.DenseCopyOf(m)
}

// rowOf returns row i of m as a slice aliasing m's data.
func rowOf(m *mat.Dense, i int) []float64 {
	raw := m.RawMatrix()
	return raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
}

// upper returns the leading k×k block of dst as a blas64.Symmetric sharing
// its storage.
func upper(dst *mat.SymDense, k int) blas64.Symmetric {
	raw := dst.RawSymmetric()
	return blas64.Symmetric{N: k, Stride: raw.Stride, Data: raw.Data, Uplo: blas.Upper}
}

// checkLayer checks the record and that the named fields are set.
func checkLayer(l *secondorder.Layer, op string, input, grad, back bool) {
	if l == nil {
		panic(fmt.Sprintf("curvature: %s: nil layer", op))
	}
	l.Check()
	if input && l.Input == nil {
		panic(fmt.Sprintf("curvature: %s: layer has no Input", op))
	}
	if grad && l.Grad == nil {
		panic(fmt.Sprintf("curvature: %s: layer has no Grad", op))
	}
	if back && l.Back == nil {
		panic(fmt.Sprintf("curvature: %s: layer has no Back", op))
	}
}

// symFromDense writes dst = (m + mᵀ)/2 for a square m.
func symFromDense(dst *mat.SymDense, m *mat.Dense, op string) {
	p, c := m.Dims()
	if p != c {
		panic(fmt.Sprintf("curvature: %s: %d×%d is not square", op, p, c))
	}
	reuseSym(dst, p, op)
	for i := 0; i < p; i++ {
		for j := i; j < p; j++ {
			dst.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
}
