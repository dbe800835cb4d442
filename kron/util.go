package kron

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// reuseDense resizes an empty dst to r×c, or panics if a non-empty dst has
// another shape.
func reuseDense(dst *mat.Dense, r, c int, op string) {
	if dst.IsEmpty() {
		dst.ReuseAs(r, c)
		return
	}
	if dr, dc := dst.Dims(); dr != r || dc != c {
		panic(fmt.Sprintf("kron: %s: destination is %d×%d, want %d×%d", op, dr, dc, r, c))
	}
}

// reuseVec resizes an empty dst to length n, or panics if a non-empty dst has
// another length.
func reuseVec(dst *mat.VecDense, n int, op string) {
	if dst.IsEmpty() {
		dst.ReuseAsVec(n)
		return
	}
	if dst.Len() != n {
		panic(fmt.Sprintf("kron: %s: destination has length %d, want %d", op, dst.Len(), n))
	}
}

func checkDims(m mat.Matrix, r, c int, op, name string) {
	if mr, mc := m.Dims(); mr != r || mc != c {
		panic(fmt.Sprintf("kron: %s: %s is %d×%d, want %d×%d", op, name, mr, mc, r, c))
	}
}

func checkLen(v mat.Vector, n int, op, name string) {
	if v.Len() != n {
		panic(fmt.Sprintf("kron: %s: %s has length %d, want %d", op, name, v.Len(), n))
	}
}

func squareDim(m mat.Matrix, op, name string) int {
	r, c := m.Dims()
	if r != c {
		panic(fmt.Sprintf("kron: %s: %s is %d×%d, want square", op, name, r, c))
	}
	return r
}

func checkDamping(lambda float64, op string) {
	if !(lambda >= 0) || math.IsInf(lambda, 1) {
		panic(fmt.Sprintf("kron: %s: damping %g, want finite and ≥ 0", op, lambda))
	}
}

// contiguous returns the row-major data of m as a slice of length r*c,
// sharing storage when m is a *mat.Dense with Stride == c, and copying into
// *buf (grown as needed) otherwise.
func contiguous(m mat.Matrix, buf *[]float64) []float64 {
	r, c := m.Dims()
	if d, ok := m.(*mat.Dense); ok {
		raw := d.RawMatrix()
		if raw.Stride == c {
			return raw.Data[:r*c]
		}
	}
	s := grow(buf, r*c)
	mat.NewDense(r, c, s).Copy(m)
	return s
}

// contiguousVec returns the data of v as a slice of length n, sharing storage
// when v is a *mat.VecDense with Inc == 1 and copying into *buf otherwise.
func contiguousVec(v mat.Vector, buf *[]float64) []float64 {
	n := v.Len()
	if d, ok := v.(*mat.VecDense); ok {
		raw := d.RawVector()
		if raw.Inc == 1 {
			return raw.Data[:n]
		}
	}
	s := grow(buf, n)
	for i := range s {
		s[i] = v.AtVec(i)
	}
	return s
}

// grow returns (*buf)[:n], reallocating *buf when it is too short.
func grow(buf *[]float64, n int) []float64 {
	if cap(*buf) < n {
		*buf = make([]float64, n)
	}
	*buf = (*buf)[:n]
	return *buf
}

// general returns a blas64.General view of row-major data.
func general(r, c int, data []float64) blas64.General {
	return blas64.General{Rows: r, Cols: c, Stride: c, Data: data}
}

// cholFactor holds the upper Cholesky factor U of an n×n symmetric positive
// definite matrix, A = UᵀU, in a reusable buffer.
type cholFactor struct {
	n    int
	data []float64
}

// load copies the upper triangle of a into the buffer.
func (f *cholFactor) load(a mat.Symmetric) {
	n := a.SymmetricDim()
	f.n = n
	d := grow(&f.data, n*n)
	if rs, ok := a.(mat.RawSymmetricer); ok {
		raw := rs.RawSymmetric()
		if raw.Uplo == blas.Upper {
			for i := 0; i < n; i++ {
				copy(d[i*n+i:i*n+n], raw.Data[i*raw.Stride+i:i*raw.Stride+n])
			}
			return
		}
	}
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			d[i*n+j] = a.At(i, j)
		}
	}
}

// addDiag adds s to the diagonal.
func (f *cholFactor) addDiag(s float64) {
	for i := 0; i < f.n; i++ {
		f.data[i*f.n+i] += s
	}
}

// addRankOne adds alpha x xᵀ to the upper triangle.
func (f *cholFactor) addRankOne(alpha float64, x []float64) {
	n := f.n
	for i := 0; i < n; i++ {
		ax := alpha * x[i]
		row := f.data[i*n : i*n+n]
		for j := i; j < n; j++ {
			row[j] += ax * x[j]
		}
	}
}

// factor computes U in place and reports whether the loaded matrix is
// positive definite.
func (f *cholFactor) factor() bool {
	_, ok := lapack64.Potrf(blas64.Symmetric{Uplo: blas.Upper, N: f.n, Stride: f.n, Data: f.data})
	return ok
}

func (f *cholFactor) u() blas64.Triangular {
	return blas64.Triangular{Uplo: blas.Upper, Diag: blas.NonUnit, N: f.n, Stride: f.n, Data: f.data}
}

// solveLeft overwrites x with A⁻¹ x.
func (f *cholFactor) solveLeft(x blas64.General) {
	u := f.u()
	blas64.Trsm(blas.Left, blas.Trans, 1, u, x)
	blas64.Trsm(blas.Left, blas.NoTrans, 1, u, x)
}

// solveRight overwrites x with x A⁻¹ = x U⁻¹ U⁻ᵀ.
func (f *cholFactor) solveRight(x blas64.General) {
	u := f.u()
	blas64.Trsm(blas.Right, blas.NoTrans, 1, u, x)
	blas64.Trsm(blas.Right, blas.Trans, 1, u, x)
}

// logDet returns log det A = 2 Σ log U_ii.
func (f *cholFactor) logDet() float64 {
	s := 0.0
	for i := 0; i < f.n; i++ {
		s += math.Log(f.data[i*f.n+i])
	}
	return 2 * s
}

// inverseTo writes A⁻¹ into dst.
func (f *cholFactor) inverseTo(dst *mat.SymDense) {
	var chol mat.Cholesky
	chol.SetFromU(mat.NewTriDense(f.n, mat.Upper, append([]float64(nil), f.data...)))
	if err := chol.InverseTo(dst); err != nil {
		// InverseTo only fails for an exactly singular factor, which
		// factor() has rejected; a Condition error still fills dst.
		if _, ok := err.(mat.Condition); !ok {
			panic("kron: " + err.Error())
		}
	}
}

// toSym writes A = UᵀU into dst.
func (f *cholFactor) toSym(dst *mat.SymDense) {
	var chol mat.Cholesky
	chol.SetFromU(mat.NewTriDense(f.n, mat.Upper, append([]float64(nil), f.data...)))
	chol.ToSym(dst)
}

// Retry is a policy for damped factorizations whose damped factor is not
// positive definite: the damping is multiplied by Growth and the
// factorization is attempted again, up to Tries attempts in all. The zero
// value makes a single attempt and returns the error. A damping of zero is
// never retried, since multiplying it changes nothing. Values of Retry are
// safe for concurrent use; Run is as safe as its attempt function.
type Retry struct {
	// Tries is the maximum number of factorizations attempted, the first
	// included. Default 1 (values ≤ 1): no retry.
	Tries int
	// Growth multiplies the damping between attempts. Default 10, the
	// factor customary in Levenberg–Marquardt damping schedules.
	Growth float64
}

func (r Retry) tries() int { return max(r.Tries, 1) }

// Run is the one raise-the-damping loop of the module: it calls attempt
// with the damping lambda and, while attempt fails, again with the damping
// raised, multiplied by Growth or, from zero, set to floor (a zero damping
// is not retried when floor ≤ 0), up to Tries attempts in all. It returns
// the damping of the last attempt and that attempt's error (nil on
// success). FactoredTikhonov, AugmentedInverse and curvature.RefreshDamped
// use it.
func (r Retry) Run(lambda, floor float64, attempt func(lambda float64) error) (float64, error) {
	tries, growth := r.tries(), r.growth()
	for try := 1; ; try++ {
		err := attempt(lambda)
		if err == nil || try >= tries || (lambda == 0 && !(floor > 0)) {
			return lambda, err
		}
		if lambda == 0 {
			lambda = floor
		} else {
			lambda *= growth
		}
	}
}

func (r Retry) growth() float64 {
	if r.Growth == 0 {
		return 10
	}
	if !(r.Growth > 1) {
		panic(fmt.Sprintf("kron: Retry.Growth is %g, want > 1", r.Growth))
	}
	return r.Growth
}

// workspace resizes the internal workspace w to r×c, reusing its storage.
func workspace(w *mat.Dense, r, c int) {
	if wr, wc := w.Dims(); !w.IsEmpty() && wr == r && wc == c {
		return
	}
	w.Reset()
	w.ReuseAs(r, c)
}
