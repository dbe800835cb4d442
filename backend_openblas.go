//go:build openblas && cgo

package secondorder

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int);
import "C"

import (
	"os"
	"runtime"
	"sync"

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
// OpenBLAS's own threads spin for a while after each call, which steals the
// cores from the Go code that runs between two products (activations,
// optimizer updates). So OpenBLAS is kept single-threaded and large
// matrix products are split across goroutines instead, one cgo call per
// core; the elementwise work in between then has the cores to itself.
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

// splitGemm is OpenBLAS with Dgemm split into one block of rows (or
// columns) of C per processor.
type splitGemm struct{ netlib.Implementation }

// splitMin is the flop count m·n·k under which a product is not split.
const splitMin = 1 << 21

// Dgemm computes C = alpha op(A) op(B) + beta C (row-major), splitting the
// larger of C's two dimensions across goroutines for large products.
func (s splitGemm) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	p := runtime.GOMAXPROCS(0)
	if p < 2 || m*n*k < splitMin || (m < 2*p && n < 2*p) {
		s.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	var wg sync.WaitGroup
	if m >= n {
		chunk := (m + p - 1) / p
		for lo := 0; lo < m; lo += chunk {
			hi := min(lo+chunk, m)
			ao := lo * lda // rows lo… of op(A) = A
			if tA != blas.NoTrans {
				ao = lo // columns lo… of A
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.Implementation.Dgemm(tA, tB, hi-lo, n, k, alpha, a[ao:], lda, b, ldb, beta, c[lo*ldc:], ldc)
			}()
		}
	} else {
		chunk := (n + p - 1) / p
		for lo := 0; lo < n; lo += chunk {
			hi := min(lo+chunk, n)
			bo := lo // columns lo… of op(B) = B
			if tB != blas.NoTrans {
				bo = lo * ldb // rows lo… of B
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.Implementation.Dgemm(tA, tB, m, hi-lo, k, alpha, a, lda, b[bo:], ldb, beta, c[lo:], ldc)
			}()
		}
	}
	wg.Wait()
}

// Dtrsm solves op(A) X = alpha B or X op(A) = alpha B for X (row-major),
// splitting B's independent columns (side Left) or rows (side Right)
// across goroutines for large systems.
func (s splitGemm) Dtrsm(side blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
	p := runtime.GOMAXPROCS(0)
	k := m // order of A
	split := n
	if side == blas.Right {
		k, split = n, m
	}
	if p < 2 || k*k*split < splitMin || split < 2*p {
		s.Implementation.Dtrsm(side, ul, tA, d, m, n, alpha, a, lda, b, ldb)
		return
	}
	var wg sync.WaitGroup
	chunk := (split + p - 1) / p
	for lo := 0; lo < split; lo += chunk {
		hi := min(lo+chunk, split)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if side == blas.Left {
				s.Implementation.Dtrsm(side, ul, tA, d, m, hi-lo, alpha, a, lda, b[lo:], ldb)
			} else {
				s.Implementation.Dtrsm(side, ul, tA, d, hi-lo, n, alpha, a, lda, b[lo*ldb:], ldb)
			}
		}()
	}
	wg.Wait()
}
