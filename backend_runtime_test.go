//go:build !(openblas && cgo) && (linux || darwin) && (amd64 || arm64)

package secondorder

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestRuntimeLoaderFallback checks that a missing library, or one without
// the routines, is an error (the backend then stays pure Go).
func TestRuntimeLoaderFallback(t *testing.T) {
	if _, err := loadOpenBLAS([]string{"libsecondorder-no-such-blas.so.0"}); err == nil {
		t.Error("bogus library loaded")
	}
	if _, err := loadOpenBLAS(nil); err == nil {
		t.Error("empty name list loaded")
	}
	if _, err := loadOpenBLAS([]string{"libm.so.6"}); err == nil && os.Getenv("SECONDORDER_BLAS") != "gonum" {
		t.Error("libm accepted as OpenBLAS")
	}
	b := Backend()
	switch os.Getenv("SECONDORDER_BLAS") {
	case "gonum":
		if ob != nil || !strings.HasPrefix(b, "gonum") {
			t.Errorf("SECONDORDER_BLAS=gonum: Backend() = %q", b)
		}
	case "openblas":
		if ob == nil || !strings.HasPrefix(b, "openblas (run time") {
			t.Errorf("SECONDORDER_BLAS=openblas: Backend() = %q", b)
		}
	}
	if (ob == nil) != (b == "gonum (pure Go)" || strings.HasPrefix(b, "gonum")) {
		t.Errorf("Backend() = %q with library %v", b, ob)
	}
	t.Logf("Backend() = %q", b)
}

// needRuntime skips when no OpenBLAS was loaded at init, and sends every
// size to OpenBLAS for the test.
func needRuntime(t *testing.T) {
	if ob == nil {
		t.Skip("OpenBLAS not loaded at run time (" + Backend() + "); install libopenblas0 to run this test")
	}
	g, v := rtGemmMin, rtGemvMin
	rtGemmMin, rtGemvMin = 0, 0
	t.Cleanup(func() { rtGemmMin, rtGemvMin = g, v })
}

func TestRuntimeGemm(t *testing.T) { needRuntime(t); checkGemm(t, rtBLAS{}) }
func TestRuntimeTrsm(t *testing.T) { needRuntime(t); checkTrsm(t, rtBLAS{}) }
func TestRuntimeGemmThreads(t *testing.T) {
	needRuntime(t)
	checkGemm(t, rtBLAS{threads: true})
}
func TestRuntimeEigenSym(t *testing.T) { needRuntime(t); checkEigenSym(t, rtLAPACK{}) }
func TestRuntimeCholesky(t *testing.T) { needRuntime(t); checkCholesky(t, rtLAPACK{}) }

// TestRuntimeLevel23 checks Dsyrk, Dsymm, Dgemv, Dger, Dsymv and Dtrsv
// against gonum over shapes, triangles, sides, transpositions, padded
// strides, negative increments and alpha/beta.
func TestRuntimeLevel23(t *testing.T) {
	needRuntime(t)
	rng := rand.New(rand.NewPCG(7, 7))
	r, g := rtBLAS{}, gonum.Implementation{}
	uplos := []blas.Uplo{blas.Upper, blas.Lower}
	transs := []blas.Transpose{blas.NoTrans, blas.Trans}
	incs := [][2]int{{1, 1}, {2, 3}, {-1, 2}, {3, -2}}
	for _, sh := range [][2]int{{1, 1}, {7, 3}, {3, 7}, {120, 90}} {
		m, n := sh[0], sh[1]
		for _, ul := range uplos {
			for _, tA := range transs {
				// Dsyrk: C (m×m) = alpha op(A) op(A)ᵀ + beta C.
				ar, ac := m, n
				if tA != blas.NoTrans {
					ar, ac = n, m
				}
				lda, ldc := ac+2, m+1
				a, c := fillRand(rng, ar*lda), fillRand(rng, m*ldc)
				want := append([]float64(nil), c...)
				r.Dsyrk(ul, tA, m, n, 0.6, a, lda, 0.4, c, ldc)
				g.Dsyrk(ul, tA, m, n, 0.6, a, lda, 0.4, want, ldc)
				sameFloats(t, fmt.Sprintf("Dsyrk %dx%d %c %c", m, n, ul, tA), c, want)

				// Dtrsv on an m×m well-conditioned triangle.
				for _, inc := range incs {
					for _, d := range []blas.Diag{blas.NonUnit, blas.Unit} {
						lda := m + 3
						a := make([]float64, m*lda)
						for i := range a {
							a[i] = 0.1 * rng.NormFloat64()
						}
						for i := 0; i < m; i++ {
							a[i*lda+i] = 2 + rng.Float64()
						}
						x := fillRand(rng, (m-1)*abs(inc[0])+1)
						want := append([]float64(nil), x...)
						r.Dtrsv(ul, tA, d, m, a, lda, x, inc[0])
						g.Dtrsv(ul, tA, d, m, a, lda, want, inc[0])
						sameFloats(t, fmt.Sprintf("Dtrsv %d %c %c %c inc %d", m, ul, tA, d, inc[0]), x, want)
					}
				}
			}
			// Dsymm on both sides: C (m×n).
			for _, side := range []blas.Side{blas.Left, blas.Right} {
				k := n
				if side == blas.Left {
					k = m
				}
				lda, ldb, ldc := k+1, n+2, n+3
				a, b, c := fillRand(rng, k*lda), fillRand(rng, m*ldb), fillRand(rng, m*ldc)
				want := append([]float64(nil), c...)
				r.Dsymm(side, ul, m, n, 0.8, a, lda, b, ldb, -0.5, c, ldc)
				g.Dsymm(side, ul, m, n, 0.8, a, lda, b, ldb, -0.5, want, ldc)
				sameFloats(t, fmt.Sprintf("Dsymm %dx%d %c %c", m, n, side, ul), c, want)
			}
			// Dsymv on m×m.
			for _, inc := range incs {
				lda := m + 2
				a := fillRand(rng, m*lda)
				x, y := fillRand(rng, (m-1)*abs(inc[0])+1), fillRand(rng, (m-1)*abs(inc[1])+1)
				want := append([]float64(nil), y...)
				r.Dsymv(ul, m, 1.3, a, lda, x, inc[0], 0.2, y, inc[1])
				g.Dsymv(ul, m, 1.3, a, lda, x, inc[0], 0.2, want, inc[1])
				sameFloats(t, fmt.Sprintf("Dsymv %d %c inc %v", m, ul, inc), y, want)
			}
		}
		for _, inc := range incs {
			lda := n + 2
			// Dgemv with both transpositions, beta 0 and not.
			for _, tA := range transs {
				for _, beta := range []float64{0, 0.7} {
					lx, ly := n, m
					if tA != blas.NoTrans {
						lx, ly = m, n
					}
					a := fillRand(rng, m*lda)
					x, y := fillRand(rng, (lx-1)*abs(inc[0])+1), fillRand(rng, (ly-1)*abs(inc[1])+1)
					want := append([]float64(nil), y...)
					r.Dgemv(tA, m, n, 0.9, a, lda, x, inc[0], beta, y, inc[1])
					g.Dgemv(tA, m, n, 0.9, a, lda, x, inc[0], beta, want, inc[1])
					sameFloats(t, fmt.Sprintf("Dgemv %dx%d %c beta %v inc %v", m, n, tA, beta, inc), y, want)
				}
			}
			// Dger (positive increments only: gonum 0.17's Dger leaves A
			// unchanged for negative ones, OpenBLAS follows reference BLAS).
			if inc[0] < 0 || inc[1] < 0 {
				continue
			}
			a := fillRand(rng, m*lda)
			x, y := fillRand(rng, (m-1)*abs(inc[0])+1), fillRand(rng, (n-1)*abs(inc[1])+1)
			want := append([]float64(nil), a...)
			r.Dger(m, n, -0.4, x, inc[0], y, inc[1], a, lda)
			g.Dger(m, n, -0.4, x, inc[0], y, inc[1], want, lda)
			sameFloats(t, fmt.Sprintf("Dger %dx%d inc %v", m, n, inc), a, want)
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestRuntimeBadCalls checks that bad arguments panic with gonum's message
// before reaching OpenBLAS.
func TestRuntimeBadCalls(t *testing.T) {
	needRuntime(t)
	r, g := rtBLAS{}, gonum.Implementation{}
	s := make([]float64, 50)
	cases := []struct {
		name    string
		rt, ref func()
	}{
		{"gemm short a", func() { r.Dgemm(blas.NoTrans, blas.NoTrans, 10, 10, 10, 1, s, 10, s, 10, 0, make([]float64, 100), 10) },
			func() { g.Dgemm(blas.NoTrans, blas.NoTrans, 10, 10, 10, 1, s, 10, s, 10, 0, make([]float64, 100), 10) }},
		{"gemm lda", func() { r.Dgemm(blas.NoTrans, blas.Trans, 5, 5, 5, 1, s, 4, s, 5, 0, s, 5) },
			func() { g.Dgemm(blas.NoTrans, blas.Trans, 5, 5, 5, 1, s, 4, s, 5, 0, s, 5) }},
		{"gemm trans", func() { r.Dgemm('x', blas.Trans, 5, 5, 5, 1, s, 5, s, 5, 0, s, 5) },
			func() { g.Dgemm('x', blas.Trans, 5, 5, 5, 1, s, 5, s, 5, 0, s, 5) }},
		{"gemm m<0", func() { r.Dgemm(blas.NoTrans, blas.Trans, -1, 5, 5, 1, s, 5, s, 5, 0, s, 5) },
			func() { g.Dgemm(blas.NoTrans, blas.Trans, -1, 5, 5, 1, s, 5, s, 5, 0, s, 5) }},
		{"trsm short b", func() { r.Dtrsm(blas.Left, blas.Upper, blas.NoTrans, blas.Unit, 5, 11, 1, s, 5, s, 11) },
			func() { g.Dtrsm(blas.Left, blas.Upper, blas.NoTrans, blas.Unit, 5, 11, 1, s, 5, s, 11) }},
		{"syrk short c", func() { r.Dsyrk(blas.Upper, blas.NoTrans, 8, 2, 1, s, 2, 0, s, 8) },
			func() { g.Dsyrk(blas.Upper, blas.NoTrans, 8, 2, 1, s, 2, 0, s, 8) }},
		{"symm side", func() { r.Dsymm('q', blas.Upper, 2, 2, 1, s, 2, s, 2, 0, s, 2) },
			func() { g.Dsymm('q', blas.Upper, 2, 2, 1, s, 2, s, 2, 0, s, 2) }},
		{"gemv short x", func() { r.Dgemv(blas.NoTrans, 5, 5, 1, s, 5, s[:4], 1, 0, s, 1) },
			func() { g.Dgemv(blas.NoTrans, 5, 5, 1, s, 5, s[:4], 1, 0, s, 1) }},
		{"ger inc 0", func() { r.Dger(5, 5, 1, s, 0, s, 1, s, 5) }, func() { g.Dger(5, 5, 1, s, 0, s, 1, s, 5) }},
		{"symv short y", func() { r.Dsymv(blas.Lower, 5, 1, s, 5, s, 1, 0, s[:9], -3) },
			func() { g.Dsymv(blas.Lower, 5, 1, s, 5, s, 1, 0, s[:9], -3) }},
		{"trsv diag", func() { r.Dtrsv(blas.Lower, blas.NoTrans, 'z', 5, s, 5, s, 1) },
			func() { g.Dtrsv(blas.Lower, blas.NoTrans, 'z', 5, s, 5, s, 1) }},
	}
	for _, c := range cases {
		got, want := panicOf(c.rt), panicOf(c.ref)
		if got == nil || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: panic %v, gonum's %v", c.name, got, want)
		}
	}
}

func panicOf(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

func BenchmarkRawDgemm(b *testing.B) {
	benchRawDgemm(b, "gonum", gonum.Implementation{})
	if ob != nil {
		benchRawDgemm(b, "openblas-runtime", rawBLAS{})
	}
}
