//go:build openblas && cgo

package secondorder

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestSplitGemm checks the goroutine-split OpenBLAS Dgemm against gonum's
// pure-Go Dgemm for every transposition, shapes split by rows and by
// columns, strided operands and a non-zero beta.
func TestSplitGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	fill := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		return x
	}
	for _, sh := range [][3]int{{300, 200, 100}, {40, 700, 90}, {513, 129, 77}, {3, 5, 7}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				t.Run(fmt.Sprintf("%dx%dx%d/%c%c", m, n, k, tA, tB), func(t *testing.T) {
					ar, ac := m, k
					if tA != blas.NoTrans {
						ar, ac = k, m
					}
					br, bc := k, n
					if tB != blas.NoTrans {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+3, bc+1, n+2
					a, b := fill(ar*lda), fill(br*ldb)
					c := fill(m * ldc)
					want := append([]float64(nil), c...)
					splitGemm{}.Dgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, c, ldc)
					gonum.Implementation{}.Dgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, want, ldc)
					for i := range c {
						if d := c[i] - want[i]; d > 1e-10 || d < -1e-10 {
							t.Fatalf("element %d: got %v, want %v", i, c[i], want[i])
						}
					}
				})
			}
		}
	}
	if !strings.HasPrefix(Backend(), "openblas") {
		t.Errorf("Backend() = %q with the openblas tag", Backend())
	}
}

// TestSplitTrsm checks the goroutine-split Dtrsm against gonum's for both
// sides, triangles and transpositions, with padded strides.
func TestSplitTrsm(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, sh := range [][2]int{{200, 150}, {150, 200}, {3, 5}} {
		m, n := sh[0], sh[1]
		for _, side := range []blas.Side{blas.Left, blas.Right} {
			for _, ul := range []blas.Uplo{blas.Upper, blas.Lower} {
				for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
					k := m
					if side == blas.Right {
						k = n
					}
					lda, ldb := k+2, n+3
					a := make([]float64, k*lda)
					for i := range a {
						a[i] = 0.1 * rng.NormFloat64()
					}
					for i := 0; i < k; i++ {
						a[i*lda+i] = 2 + rng.Float64()
					}
					b := make([]float64, m*ldb)
					for i := range b {
						b[i] = rng.NormFloat64()
					}
					want := append([]float64(nil), b...)
					splitGemm{}.Dtrsm(side, ul, tA, blas.NonUnit, m, n, 0.5, a, lda, b, ldb)
					gonum.Implementation{}.Dtrsm(side, ul, tA, blas.NonUnit, m, n, 0.5, a, lda, want, ldb)
					for i := range b {
						if d := b[i] - want[i]; d > 1e-10 || d < -1e-10 {
							t.Fatalf("%dx%d side %c uplo %c trans %c: element %d: got %v, want %v", m, n, side, ul, tA, i, b[i], want[i])
						}
					}
				}
			}
		}
	}
}
