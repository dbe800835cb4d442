//go:build !(openblas && cgo) && (linux || darwin) && (amd64 || arm64)

package secondorder

import (
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// rtBLAS is gonum's pure-Go BLAS with the level 2 and 3 routines of the
// module's hot paths (and of gonum's mat behind them) taken from the
// OpenBLAS loaded at run time (backend_runtime.go). Each routine checks its
// arguments as gonum does, with gonum's panic messages, so that a bad call
// panics instead of reaching OpenBLAS; calls too small to pay for the
// foreign call stay in Go, and so does anything beyond OpenBLAS's 32-bit
// integers. gonum's row-major matrices are column-major transposes, so each
// call is mapped to the Fortran routine on the transposed problem.
type rtBLAS struct {
	gonum.Implementation
	threads bool // OpenBLAS's own threads, no split (SECONDORDER_OPENBLAS=threads)
}

// rawBLAS calls OpenBLAS without any check; rtBLAS checks first.
type rawBLAS struct{}

// Minimum sizes for OpenBLAS: below them gonum's pure Go is as fast as a
// foreign call (measured on the benchmark machine, see README "Speed").
// Variables so that the tests can send every size to OpenBLAS.
var (
	rtGemmMin = 512  // m·n·k, level 3 (gonum wins at 4³, loses at 10³)
	rtGemvMin = 4096 // m·n, level 2 (not measured; conservative)
)

// Panic strings of gonum's BLAS parameter checks.
const (
	zeroIncX     = "blas: zero x index increment"
	zeroIncY     = "blas: zero y index increment"
	mLT0         = "blas: m < 0"
	nLT0         = "blas: n < 0"
	kLT0         = "blas: k < 0"
	badUplo      = "blas: illegal triangle"
	badTranspose = "blas: illegal transpose"
	badDiag      = "blas: illegal diagonal"
	badSide      = "blas: illegal side"
	badLdA       = "blas: bad leading dimension of A"
	badLdB       = "blas: bad leading dimension of B"
	badLdC       = "blas: bad leading dimension of C"
	shortX       = "blas: insufficient length of x"
	shortY       = "blas: insufficient length of y"
	shortA       = "blas: insufficient length of a"
	shortB       = "blas: insufficient length of b"
	shortC       = "blas: insufficient length of c"
)

func checkTrans(t blas.Transpose) {
	if t != blas.NoTrans && t != blas.Trans && t != blas.ConjTrans {
		panic(badTranspose)
	}
}

func checkUplo(ul blas.Uplo) {
	if ul != blas.Lower && ul != blas.Upper {
		panic(badUplo)
	}
}

// shortVec reports whether a vector of n elements with increment inc does
// not fit in a slice of length l (n > 0).
func shortVec(l, n, inc int) bool {
	return (inc > 0 && (n-1)*inc >= l) || (inc < 0 && (1-n)*inc >= l)
}

// Dgemm computes C = alpha op(A) op(B) + beta C.
func (r rtBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	checkTrans(tA)
	checkTrans(tB)
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	if k < 0 {
		panic(kLT0)
	}
	aTrans := tA != blas.NoTrans
	bTrans := tB != blas.NoTrans
	if (aTrans && lda < max(1, m)) || (!aTrans && lda < max(1, k)) {
		panic(badLdA)
	}
	if (bTrans && ldb < max(1, k)) || (!bTrans && ldb < max(1, n)) {
		panic(badLdB)
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 {
		return
	}
	if (aTrans && len(a) < (k-1)*lda+m) || (!aTrans && len(a) < (m-1)*lda+k) {
		panic(shortA)
	}
	if (bTrans && len(b) < (n-1)*ldb+k) || (!bTrans && len(b) < (k-1)*ldb+n) {
		panic(shortB)
	}
	if len(c) < (m-1)*ldc+n {
		panic(shortC)
	}
	if k == 0 || m*n*k < rtGemmMin || !fits32(m, n, k, lda, ldb, ldc) {
		r.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if r.threads {
		rawBLAS{}.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	splitDgemm(rawBLAS{}, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dgemm is row-major C = alpha op(A) op(B) + beta C, that is column-major
// Cᵀ = alpha op(B)ᵀ op(A)ᵀ + beta Cᵀ.
func (rawBLAS) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	f := newCall()
	f.char(0, trans(tB))
	f.char(1, trans(tA))
	f.int(0, n)
	f.int(1, m)
	f.int(2, k)
	f.float(0, alpha)
	f.slice(b)
	f.int(3, ldb)
	f.slice(a)
	f.int(4, lda)
	f.float(1, beta)
	f.slice(c)
	f.int(5, ldc)
	f.call(ob.dgemm, 2, 0)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
}

// Dtrsm solves op(A) X = alpha B or X op(A) = alpha B for X.
func (r rtBLAS) Dtrsm(s blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
	if s != blas.Left && s != blas.Right {
		panic(badSide)
	}
	checkUplo(ul)
	checkTrans(tA)
	if d != blas.NonUnit && d != blas.Unit {
		panic(badDiag)
	}
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	k := n
	if s == blas.Left {
		k = m
	}
	if lda < max(1, k) {
		panic(badLdA)
	}
	if ldb < max(1, n) {
		panic(badLdB)
	}
	if m == 0 || n == 0 {
		return
	}
	if len(a) < lda*(k-1)+k {
		panic(shortA)
	}
	if len(b) < ldb*(m-1)+n {
		panic(shortB)
	}
	if m*n*k < rtGemmMin || !fits32(m, n, lda, ldb) {
		r.Implementation.Dtrsm(s, ul, tA, d, m, n, alpha, a, lda, b, ldb)
		return
	}
	if r.threads {
		rawBLAS{}.Dtrsm(s, ul, tA, d, m, n, alpha, a, lda, b, ldb)
		return
	}
	splitDtrsm(rawBLAS{}, s, ul, tA, d, m, n, alpha, a, lda, b, ldb)
}

// Dtrsm on row-major B is the column-major solve on Bᵀ from the other side,
// with A's stored triangle flipped and the same transposition.
func (rawBLAS) Dtrsm(s blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
	f := newCall()
	f.char(0, flipSide(s))
	f.char(1, lapackUplo(ul))
	f.char(2, trans(tA))
	f.char(3, diag(d))
	f.int(0, n)
	f.int(1, m)
	f.float(0, alpha)
	f.slice(a)
	f.int(2, lda)
	f.slice(b)
	f.int(3, ldb)
	f.call(ob.dtrsm, 4, 0)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
}

// Dsyrk computes C = alpha A Aᵀ + beta C or C = alpha Aᵀ A + beta C on the
// triangle ul of the symmetric C.
func (r rtBLAS) Dsyrk(ul blas.Uplo, tA blas.Transpose, n, k int, alpha float64, a []float64, lda int, beta float64, c []float64, ldc int) {
	checkUplo(ul)
	checkTrans(tA)
	if n < 0 {
		panic(nLT0)
	}
	if k < 0 {
		panic(kLT0)
	}
	row, col := k, n
	if tA == blas.NoTrans {
		row, col = n, k
	}
	if lda < max(1, col) {
		panic(badLdA)
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if n == 0 {
		return
	}
	if len(a) < lda*(row-1)+col {
		panic(shortA)
	}
	if len(c) < ldc*(n-1)+n {
		panic(shortC)
	}
	if k == 0 || n*n*k < rtGemmMin || !fits32(n, k, lda, ldc) {
		r.Implementation.Dsyrk(ul, tA, n, k, alpha, a, lda, beta, c, ldc)
		return
	}
	f := newCall()
	f.char(0, lapackUplo(ul))
	f.char(1, flipTrans(tA))
	f.int(0, n)
	f.int(1, k)
	f.float(0, alpha)
	f.slice(a)
	f.int(2, lda)
	f.float(1, beta)
	f.slice(c)
	f.int(3, ldc)
	f.call(ob.dsyrk, 2, 0)
	runtime.KeepAlive(a)
	runtime.KeepAlive(c)
}

// Dsymm computes C = alpha A B + beta C (side Left) or C = alpha B A + beta
// C (side Right) with A symmetric.
func (r rtBLAS) Dsymm(s blas.Side, ul blas.Uplo, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if s != blas.Right && s != blas.Left {
		panic(badSide)
	}
	checkUplo(ul)
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	k := n
	if s == blas.Left {
		k = m
	}
	if lda < max(1, k) {
		panic(badLdA)
	}
	if ldb < max(1, n) {
		panic(badLdB)
	}
	if ldc < max(1, n) {
		panic(badLdC)
	}
	if m == 0 || n == 0 {
		return
	}
	if len(a) < lda*(k-1)+k {
		panic(shortA)
	}
	if len(b) < ldb*(m-1)+n {
		panic(shortB)
	}
	if len(c) < ldc*(m-1)+n {
		panic(shortC)
	}
	if m*n*k < rtGemmMin || !fits32(m, n, lda, ldb, ldc) {
		r.Implementation.Dsymm(s, ul, m, n, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	f := newCall()
	f.char(0, flipSide(s))
	f.char(1, lapackUplo(ul))
	f.int(0, n)
	f.int(1, m)
	f.float(0, alpha)
	f.slice(a)
	f.int(2, lda)
	f.slice(b)
	f.int(3, ldb)
	f.float(1, beta)
	f.slice(c)
	f.int(4, ldc)
	f.call(ob.dsymm, 2, 0)
	runtime.KeepAlive(a)
	runtime.KeepAlive(b)
	runtime.KeepAlive(c)
}

// Dgemv computes y = alpha op(A) x + beta y.
func (r rtBLAS) Dgemv(tA blas.Transpose, m, n int, alpha float64, a []float64, lda int, x []float64, incX int, beta float64, y []float64, incY int) {
	checkTrans(tA)
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	if lda < max(1, n) {
		panic(badLdA)
	}
	if incX == 0 {
		panic(zeroIncX)
	}
	if incY == 0 {
		panic(zeroIncY)
	}
	lenX, lenY := m, n
	if tA == blas.NoTrans {
		lenX, lenY = n, m
	}
	if m == 0 || n == 0 {
		return
	}
	if shortVec(len(x), lenX, incX) {
		panic(shortX)
	}
	if shortVec(len(y), lenY, incY) {
		panic(shortY)
	}
	if len(a) < lda*(m-1)+n {
		panic(shortA)
	}
	if m*n < rtGemvMin || !fits32(m, n, lda, incX, incY) {
		r.Implementation.Dgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
		return
	}
	f := newCall()
	f.char(0, flipTrans(tA))
	f.int(0, n)
	f.int(1, m)
	f.float(0, alpha)
	f.slice(a)
	f.int(2, lda)
	f.slice(x)
	f.int(3, incX)
	f.float(1, beta)
	f.slice(y)
	f.int(4, incY)
	f.call(ob.dgemv, 1, 0)
	runtime.KeepAlive(a)
	runtime.KeepAlive(x)
	runtime.KeepAlive(y)
}

// Dger computes A += alpha x yᵀ.
func (r rtBLAS) Dger(m, n int, alpha float64, x []float64, incX int, y []float64, incY int, a []float64, lda int) {
	if m < 0 {
		panic(mLT0)
	}
	if n < 0 {
		panic(nLT0)
	}
	if lda < max(1, n) {
		panic(badLdA)
	}
	if incX == 0 {
		panic(zeroIncX)
	}
	if incY == 0 {
		panic(zeroIncY)
	}
	if m == 0 || n == 0 {
		return
	}
	if shortVec(len(x), m, incX) {
		panic(shortX)
	}
	if shortVec(len(y), n, incY) {
		panic(shortY)
	}
	if len(a) < lda*(m-1)+n {
		panic(shortA)
	}
	if m*n < rtGemvMin || !fits32(m, n, lda, incX, incY) {
		r.Implementation.Dger(m, n, alpha, x, incX, y, incY, a, lda)
		return
	}
	f := newCall()
	f.int(0, n)
	f.int(1, m)
	f.float(0, alpha)
	f.slice(y)
	f.int(2, incY)
	f.slice(x)
	f.int(3, incX)
	f.slice(a)
	f.int(4, lda)
	f.call(ob.dger, 0, 0)
	runtime.KeepAlive(a)
	runtime.KeepAlive(x)
	runtime.KeepAlive(y)
}

// Dsymv computes y = alpha A x + beta y with A symmetric.
func (r rtBLAS) Dsymv(ul blas.Uplo, n int, alpha float64, a []float64, lda int, x []float64, incX int, beta float64, y []float64, incY int) {
	checkUplo(ul)
	if n < 0 {
		panic(nLT0)
	}
	if lda < max(1, n) {
		panic(badLdA)
	}
	if incX == 0 {
		panic(zeroIncX)
	}
	if incY == 0 {
		panic(zeroIncY)
	}
	if n == 0 {
		return
	}
	if len(a) < lda*(n-1)+n {
		panic(shortA)
	}
	if shortVec(len(x), n, incX) {
		panic(shortX)
	}
	if shortVec(len(y), n, incY) {
		panic(shortY)
	}
	if n*n < rtGemvMin || !fits32(n, lda, incX, incY) {
		r.Implementation.Dsymv(ul, n, alpha, a, lda, x, incX, beta, y, incY)
		return
	}
	f := newCall()
	f.char(0, lapackUplo(ul))
	f.int(0, n)
	f.float(0, alpha)
	f.slice(a)
	f.int(1, lda)
	f.slice(x)
	f.int(2, incX)
	f.float(1, beta)
	f.slice(y)
	f.int(3, incY)
	f.call(ob.dsymv, 1, 0)
	runtime.KeepAlive(a)
	runtime.KeepAlive(x)
	runtime.KeepAlive(y)
}

// Dtrsv solves op(A) x = b for x, b given in x.
func (r rtBLAS) Dtrsv(ul blas.Uplo, tA blas.Transpose, d blas.Diag, n int, a []float64, lda int, x []float64, incX int) {
	checkUplo(ul)
	checkTrans(tA)
	if d != blas.NonUnit && d != blas.Unit {
		panic(badDiag)
	}
	if n < 0 {
		panic(nLT0)
	}
	if lda < max(1, n) {
		panic(badLdA)
	}
	if incX == 0 {
		panic(zeroIncX)
	}
	if n == 0 {
		return
	}
	if len(a) < lda*(n-1)+n {
		panic(shortA)
	}
	if shortVec(len(x), n, incX) {
		panic(shortX)
	}
	if n*n < rtGemvMin || !fits32(n, lda, incX) {
		r.Implementation.Dtrsv(ul, tA, d, n, a, lda, x, incX)
		return
	}
	f := newCall()
	f.char(0, lapackUplo(ul))
	f.char(1, flipTrans(tA))
	f.char(2, diag(d))
	f.int(0, n)
	f.slice(a)
	f.int(1, lda)
	f.slice(x)
	f.int(2, incX)
	f.call(ob.dtrsv, 3, 0)
	runtime.KeepAlive(a)
	runtime.KeepAlive(x)
}
