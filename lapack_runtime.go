//go:build !(openblas && cgo) && (linux || darwin) && (amd64 || arm64)

package secondorder

import (
	"runtime"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
)

// rtLAPACK is gonum's LAPACK with Dsyev and Dpotrf taken from the OpenBLAS
// loaded at run time (see lapack_rowmajor.go).
type rtLAPACK struct{ lapackgonum.Implementation }

// rtDsyevd calls OpenBLAS's dsyevd_.
func rtDsyevd(jobz, uplo byte, n int, a []float64, lda int, w, work []float64, lwork int, iwork []int32, liwork int) int {
	f := newCall()
	f.char(0, jobz)
	f.char(1, uplo)
	f.int(0, n)
	f.slice(a)
	f.int(1, lda)
	f.slice(w)
	f.slice(work)
	f.int(2, lwork)
	f.slice32(iwork)
	f.int(3, liwork)
	f.int(4, 0)
	info := f.call(ob.dsyevd, 2, 4)
	runtime.KeepAlive(a)
	runtime.KeepAlive(w)
	runtime.KeepAlive(work)
	runtime.KeepAlive(iwork)
	return int(info)
}

// Dsyev computes the eigenvalues, and with jobz = lapack.EVCompute the
// eigenvectors, of the symmetric n×n matrix in a (row-major, triangle uplo)
// with OpenBLAS's divide-and-conquer dsyevd, keeping gonum's contract.
func (rtLAPACK) Dsyev(jobz lapack.EVJob, uplo blas.Uplo, n int, a []float64, lda int, w, work []float64, lwork int) bool {
	return dsyevRowMajor(rtDsyevd, jobz, uplo, n, a, lda, w, work, lwork)
}

// Dpotrf computes the Cholesky factorization of the symmetric positive
// definite n×n matrix in a (row-major, triangle ul) with OpenBLAS's dpotrf.
// It reports false when a is not positive definite.
func (rtLAPACK) Dpotrf(ul blas.Uplo, n int, a []float64, lda int) bool {
	if !checkDpotrf(n, a, lda) {
		return true
	}
	f := newCall()
	f.char(0, lapackUplo(ul))
	f.int(0, n)
	f.slice(a)
	f.int(1, lda)
	f.int(2, 0)
	info := f.call(ob.dpotrf, 1, 2)
	runtime.KeepAlive(a)
	return info == 0
}
