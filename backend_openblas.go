//go:build openblas && cgo

package secondorder

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

import (
	"os"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/netlib/blas/netlib"
)

// With the openblas build tag every package of the module (they all import
// this one) runs gonum's BLAS on OpenBLAS through cgo, and the symmetric
// eigendecomposition and Cholesky factorization of gonum's LAPACK too (see
// openblasLAPACK).
//
// OpenBLAS is kept single-threaded and large matrix products are split
// across goroutines instead, one cgo call per core (see split.go).
//
// Setting SECONDORDER_OPENBLAS=threads in the environment keeps OpenBLAS's
// own threading instead (for comparison, or on machines where it wins).
func init() {
	lapack64.Use(openblasLAPACK{})
	backend = "openblas"
	if os.Getenv("SECONDORDER_OPENBLAS") == "threads" {
		blas64.Use(netlib.Implementation{})
		backend = "openblas (OpenBLAS threads)"
		return
	}
	C.openblas_set_num_threads(1)
	blas64.Use(splitGemm{})
}

// splitGemm is OpenBLAS with large Dgemm and Dtrsm calls split into one
// block per processor (split.go).
type splitGemm struct{ netlib.Implementation }

// Dgemm computes C = alpha op(A) op(B) + beta C (row-major), splitting the
// larger of C's two dimensions across goroutines for large products.
func (s splitGemm) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	splitDgemm(s.Implementation, tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Dtrsm solves op(A) X = alpha B or X op(A) = alpha B for X (row-major),
// splitting B's independent columns (side Left) or rows (side Right)
// across goroutines for large systems.
func (s splitGemm) Dtrsm(side blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
	splitDtrsm(s.Implementation, side, ul, tA, d, m, n, alpha, a, lda, b, ldb)
}
