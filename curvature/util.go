package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/matutil"
)

// reuseSym, reuseVec and symFromDense are matutil's, with panics prefixed
// "curvature: ".
func reuseSym(dst *mat.SymDense, n int, op string) { matutil.ReuseSym("curvature", dst, n, op) }
func reuseVec(dst *mat.VecDense, n int, op string) { matutil.ReuseVec("curvature", dst, n, op) }
func symFromDense(dst *mat.SymDense, m *mat.Dense, op string) {
	matutil.SymFromDense("curvature", dst, m, op)
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
