//go:build openblas && cgo

package secondorder

/*
#cgo LDFLAGS: -lopenblas
#include <stddef.h>
void dsyevd_(char *jobz, char *uplo, int *n, double *a, int *lda, double *w,
	double *work, int *lwork, int *iwork, int *liwork, int *info, size_t, size_t);
void dpotrf_(char *uplo, int *n, double *a, int *lda, int *info, size_t);

// The wrappers take their scalars by value, so that Go passes no pointers
// to its own variables (which would move them to the heap at every call).
static int potrf(char uplo, int n, double *a, int lda) {
	int info;
	dpotrf_(&uplo, &n, a, &lda, &info, 1);
	return info;
}

static int syevd(char jobz, char uplo, int n, double *a, int lda, double *w,
		double *work, int lwork, int *iwork, int liwork) {
	int info;
	dsyevd_(&jobz, &uplo, &n, a, &lda, w, work, &lwork, iwork, &liwork, &info, 1, 1);
	return info;
}

static int syevdQuery(char jobz, char uplo, int n, double *a, int lda, double *w,
		int *lwork, int *liwork) {
	int info;
	double wq;
	int iwq;
	int lw = -1, liw = -1;
	dsyevd_(&jobz, &uplo, &n, a, &lda, w, &wq, &lw, &iwq, &liw, &info, 1, 1);
	*lwork = (int)wq;
	*liwork = iwq;
	return info;
}
*/
import "C"

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
)

// openblasLAPACK is gonum's LAPACK with the two routines that pay most on
// large factors — the symmetric eigendecomposition behind mat.EigenSym
// (natural neural networks' whitening, eigen-based damped solves) and the
// Cholesky factorization behind mat.Cholesky (K-FAC, ACP, Newton) — taken
// from OpenBLAS's LAPACK through cgo. The rest stays pure Go (it runs on
// OpenBLAS's BLAS all the same).
type openblasLAPACK struct{ lapackgonum.Implementation }

// flip returns the LAPACK (column-major) triangle that holds the same
// entries as uplo does in gonum's row-major storage.
func flip(uplo blas.Uplo) C.char {
	if uplo == blas.Upper {
		return 'L'
	}
	return 'U'
}

// Dsyev computes the eigenvalues, and with jobz = lapack.EVCompute the
// eigenvectors, of the symmetric n×n matrix in a (row-major, triangle uplo)
// with OpenBLAS's divide-and-conquer dsyevd. It keeps gonum's contract:
// eigenvalues ascending in w, eigenvectors in the columns of a; a workspace
// query (lwork = −1) asks for nothing, since dsyevd's workspace is
// allocated here.
func (openblasLAPACK) Dsyev(jobz lapack.EVJob, uplo blas.Uplo, n int, a []float64, lda int, w, work []float64, lwork int) bool {
	if lwork == -1 {
		work[0] = 1
		return true
	}
	if n == 0 {
		return true
	}
	if n > math.MaxInt32 || lda > math.MaxInt32 {
		panic("secondorder: Dsyev: matrix too large for OpenBLAS's 32-bit LAPACK")
	}
	if len(a) < (n-1)*lda+n || len(w) < n {
		panic("secondorder: Dsyev: short slice")
	}
	job := C.char('N')
	if jobz == lapack.EVCompute {
		job = 'V'
	}
	ul := flip(uplo)
	sizes := make([]C.int, 2)
	if C.syevdQuery(job, ul, C.int(n), (*C.double)(&a[0]), C.int(lda), (*C.double)(&w[0]), &sizes[0], &sizes[1]) != 0 {
		return false
	}
	ws := make([]float64, max(int(sizes[0]), 1))
	iws := make([]C.int, max(int(sizes[1]), 1))
	if C.syevd(job, ul, C.int(n), (*C.double)(&a[0]), C.int(lda), (*C.double)(&w[0]), (*C.double)(&ws[0]), C.int(len(ws)), &iws[0], C.int(len(iws))) != 0 {
		return false
	}
	if jobz == lapack.EVCompute {
		// Column-major eigenvectors are rows in row-major storage:
		// transpose the n×n block in place.
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				a[i*lda+j], a[j*lda+i] = a[j*lda+i], a[i*lda+j]
			}
		}
	}
	return true
}

// Dpotrf computes the Cholesky factorization of the symmetric positive
// definite n×n matrix in a (row-major, triangle ul) with OpenBLAS's dpotrf.
// It reports false when a is not positive definite.
func (openblasLAPACK) Dpotrf(ul blas.Uplo, n int, a []float64, lda int) bool {
	if n == 0 {
		return true
	}
	if len(a) < (n-1)*lda+n {
		panic("secondorder: Dpotrf: short slice")
	}
	return C.potrf(flip(ul), C.int(n), (*C.double)(&a[0]), C.int(lda)) == 0
}
