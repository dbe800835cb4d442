package secondorder

import (
	"math"
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack"
)

// The OpenBLAS backends (cgo with -tags openblas, or loaded at run time)
// take the two LAPACK routines that pay most on large factors from
// OpenBLAS's LAPACK — the symmetric eigendecomposition behind mat.EigenSym
// (natural neural networks' whitening, eigen-based damped solves) and the
// Cholesky factorization behind mat.Cholesky (K-FAC, ACP, Newton). The rest
// of gonum's LAPACK stays pure Go (it runs on OpenBLAS's BLAS all the
// same). The row-major wrapping below is shared by both backends.

// lapackUplo returns the LAPACK (column-major) triangle that holds the same
// entries as uplo does in gonum's row-major storage.
func lapackUplo(uplo blas.Uplo) byte {
	if uplo == blas.Upper {
		return 'L'
	}
	return 'U'
}

// dsyevdFunc calls LAPACK's dsyevd (column-major) and returns its info; with
// lwork = liwork = −1 it is a workspace query that stores the sizes in
// work[0] and iwork[0].
type dsyevdFunc func(jobz, uplo byte, n int, a []float64, lda int, w, work []float64, lwork int, iwork []int32, liwork int) int

// dsyevRowMajor implements gonum's Dsyev with LAPACK's divide-and-conquer
// dsyevd: the eigenvalues, and with jobz = lapack.EVCompute the
// eigenvectors, of the symmetric n×n matrix in a (row-major, triangle
// uplo), eigenvalues ascending in w, eigenvectors in the columns of a. A
// workspace query (lwork = −1) asks for nothing, since dsyevd's workspace
// is allocated here.
func dsyevRowMajor(syevd dsyevdFunc, jobz lapack.EVJob, uplo blas.Uplo, n int, a []float64, lda int, w, work []float64, lwork int) bool {
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
	if n < 0 || lda < n {
		panic("secondorder: Dsyev: bad dimensions")
	}
	if len(a) < (n-1)*lda+n || len(w) < n {
		panic("secondorder: Dsyev: short slice")
	}
	job := byte('N')
	if jobz == lapack.EVCompute {
		job = 'V'
	}
	ul := lapackUplo(uplo)
	sw := syevdWorkspaces.Get().(*syevdWork)
	defer syevdWorkspaces.Put(sw)
	if syevd(job, ul, n, a, lda, w, sw.wq[:], -1, sw.iwq[:], -1) != 0 {
		return false
	}
	if nw := max(int(sw.wq[0]), 1); cap(sw.ws) < nw {
		sw.ws = make([]float64, nw)
	} else {
		sw.ws = sw.ws[:nw]
	}
	if ni := max(int(sw.iwq[0]), 1); cap(sw.iws) < ni {
		sw.iws = make([]int32, ni)
	} else {
		sw.iws = sw.iws[:ni]
	}
	if syevd(job, ul, n, a, lda, w, sw.ws, len(sw.ws), sw.iws, len(sw.iws)) != 0 {
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

// syevdWork is the workspace of one dsyevd call, pooled so that repeated
// eigendecompositions (EKFAC's refreshes) do not allocate.
type syevdWork struct {
	wq  [1]float64
	iwq [1]int32
	ws  []float64
	iws []int32
}

var syevdWorkspaces = sync.Pool{New: func() any { return new(syevdWork) }}

// checkDpotrf panics on arguments that gonum's Dpotrf refuses, before they
// reach OpenBLAS; it reports whether there is anything to factorize.
func checkDpotrf(n int, a []float64, lda int) bool {
	if n < 0 || lda < max(1, n) {
		panic("secondorder: Dpotrf: bad dimensions")
	}
	if n == 0 {
		return false
	}
	if n > math.MaxInt32 || lda > math.MaxInt32 {
		panic("secondorder: Dpotrf: matrix too large for OpenBLAS's 32-bit LAPACK")
	}
	if len(a) < (n-1)*lda+n {
		panic("secondorder: Dpotrf: short slice")
	}
	return true
}
