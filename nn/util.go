package nn

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// resize makes m an r×c matrix, reusing its backing slice when it is large
// enough. The contents are unspecified (zero after a resize) when the shape
// changes and kept otherwise.
func resize(m *mat.Dense, r, c int) {
	if mr, mc := m.Dims(); mr == r && mc == c {
		return
	}
	if r <= 0 || c <= 0 {
		panic(fmt.Sprintf("nn: cannot make a %d×%d matrix", r, c))
	}
	m.Reset()
	m.ReuseAs(r, c)
}

// useDst makes an empty dst r×c and panics if a non-empty dst has another
// shape.
func useDst(op string, dst *mat.Dense, r, c int) {
	if dst == nil {
		panic(fmt.Sprintf("nn: %s: nil destination", op))
	}
	if dst.IsEmpty() {
		dst.ReuseAs(r, c)
		return
	}
	if dr, dc := dst.Dims(); dr != r || dc != c {
		panic(fmt.Sprintf("nn: %s: destination is %d×%d, want %d×%d", op, dr, dc, r, c))
	}
}

// checkShape panics unless m is r×c.
func checkShape(op, name string, m mat.Matrix, r, c int) {
	if m == nil {
		panic(fmt.Sprintf("nn: %s: %s is nil", op, name))
	}
	if mr, mc := m.Dims(); mr != r || mc != c {
		panic(fmt.Sprintf("nn: %s: %s is %d×%d, want %d×%d", op, name, mr, mc, r, c))
	}
}

// row returns row i of m as a slice aliasing m's data.
func row(m *mat.Dense, i int) []float64 {
	raw := m.RawMatrix()
	return raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
}

// gemm computes c = alpha op(a) op(b) + beta c with gonum's BLAS on the raw
// matrices. It is mat.Dense.Mul without the interface conversion of .T(),
// which allocates.
func gemm(ta, tb blas.Transpose, alpha float64, a, b *mat.Dense, beta float64, c *mat.Dense) {
	blas64.Gemm(ta, tb, alpha, a.RawMatrix(), b.RawMatrix(), beta, c.RawMatrix())
}

// exampleIndex returns the example that row r belongs to.
func exampleIndex(idx []int, r int) int {
	if idx == nil {
		return r
	}
	return idx[r]
}
