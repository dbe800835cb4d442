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
*/
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
)

// openblasLAPACK is gonum's LAPACK with Dsyev and Dpotrf taken from
// OpenBLAS's LAPACK through cgo (see lapack_rowmajor.go).
type openblasLAPACK struct{ lapackgonum.Implementation }

// cgoDsyevd calls OpenBLAS's dsyevd through cgo.
func cgoDsyevd(jobz, uplo byte, n int, a []float64, lda int, w, work []float64, lwork int, iwork []int32, liwork int) int {
	return int(C.syevd(C.char(jobz), C.char(uplo), C.int(n), (*C.double)(&a[0]), C.int(lda), (*C.double)(&w[0]),
		(*C.double)(&work[0]), C.int(lwork), (*C.int)(&iwork[0]), C.int(liwork)))
}

// Dsyev computes the eigenvalues, and with jobz = lapack.EVCompute the
// eigenvectors, of the symmetric n×n matrix in a (row-major, triangle uplo)
// with OpenBLAS's divide-and-conquer dsyevd. It keeps gonum's contract:
// eigenvalues ascending in w, eigenvectors in the columns of a; a workspace
// query (lwork = −1) asks for nothing, since dsyevd's workspace is
// allocated here.
func (openblasLAPACK) Dsyev(jobz lapack.EVJob, uplo blas.Uplo, n int, a []float64, lda int, w, work []float64, lwork int) bool {
	return dsyevRowMajor(cgoDsyevd, jobz, uplo, n, a, lda, w, work, lwork)
}

// Dpotrf computes the Cholesky factorization of the symmetric positive
// definite n×n matrix in a (row-major, triangle ul) with OpenBLAS's dpotrf.
// It reports false when a is not positive definite.
func (openblasLAPACK) Dpotrf(ul blas.Uplo, n int, a []float64, lda int) bool {
	if !checkDpotrf(n, a, lda) {
		return true
	}
	return C.potrf(C.char(lapackUplo(ul)), C.int(n), (*C.double)(&a[0]), C.int(lda)) == 0
}
