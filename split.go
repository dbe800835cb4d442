package secondorder

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
)

// The OpenBLAS backends (cgo with -tags openblas, or loaded at run time)
// keep OpenBLAS single-threaded and split large products and triangular
// solves across goroutines instead, one OpenBLAS call per core: OpenBLAS's
// own threads spin for a while after each call, which steals the cores
// from the Go code that runs between two products (activations, optimizer
// updates), and the elementwise work in between then has the cores to
// itself. The split logic below is shared by both backends.

// gemmer and trsmer are the row-major OpenBLAS routines the split calls,
// one call per block. The backends pass zero-size values, so that the
// conversion to the interface allocates nothing.
type gemmer interface {
	Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)
}

type trsmer interface {
	Dtrsm(side blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int)
}

// splitMin is the flop count m·n·k under which a product is not split.
const splitMin = 1 << 21

// splitDgemm computes C = alpha op(A) op(B) + beta C (row-major) with g,
// splitting the larger of C's two dimensions across goroutines for large
// products.
func splitDgemm(g gemmer, tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	p := runtime.GOMAXPROCS(0)
	if p < 2 || m*n*k < splitMin || (m < 2*p && n < 2*p) {
		g.Dgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
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
				g.Dgemm(tA, tB, hi-lo, n, k, alpha, a[ao:], lda, b, ldb, beta, c[lo*ldc:], ldc)
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
				g.Dgemm(tA, tB, m, hi-lo, k, alpha, a, lda, b[bo:], ldb, beta, c[lo:], ldc)
			}()
		}
	}
	wg.Wait()
}

// splitDtrsm solves op(A) X = alpha B or X op(A) = alpha B for X
// (row-major) with t, splitting B's independent columns (side Left) or
// rows (side Right) across goroutines for large systems.
func splitDtrsm(t trsmer, side blas.Side, ul blas.Uplo, tA blas.Transpose, d blas.Diag, m, n int, alpha float64, a []float64, lda int, b []float64, ldb int) {
	p := runtime.GOMAXPROCS(0)
	k := m // order of A
	split := n
	if side == blas.Right {
		k, split = n, m
	}
	if p < 2 || k*k*split < splitMin || split < 2*p {
		t.Dtrsm(side, ul, tA, d, m, n, alpha, a, lda, b, ldb)
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
				t.Dtrsm(side, ul, tA, d, m, hi-lo, alpha, a, lda, b[lo:], ldb)
			} else {
				t.Dtrsm(side, ul, tA, d, hi-lo, n, alpha, a, lda, b[lo*ldb:], ldb)
			}
		}()
	}
	wg.Wait()
}
