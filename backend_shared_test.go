package secondorder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

// Checks of an OpenBLAS backend (cgo or run time) against gonum's pure-Go
// results, shared by backend_openblas_test.go and backend_runtime_test.go.

func fillRand(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

func sameFloats(t *testing.T, what string, got, want []float64) {
	t.Helper()
	for i := range got {
		if d := got[i] - want[i]; d > 1e-10 || d < -1e-10 || math.IsNaN(d) {
			t.Fatalf("%s: element %d: got %v, want %v", what, i, got[i], want[i])
		}
	}
}

// checkGemm checks g's Dgemm against gonum's for every transposition,
// shapes split by rows and by columns, strided operands and a non-zero
// beta.
func checkGemm(t *testing.T, g gemmer) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, sh := range [][3]int{{300, 200, 100}, {40, 700, 90}, {513, 129, 77}, {3, 5, 7}, {10, 10, 10}, {1, 1, 1}} {
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
					a, b := fillRand(rng, ar*lda), fillRand(rng, br*ldb)
					c := fillRand(rng, m*ldc)
					want := append([]float64(nil), c...)
					g.Dgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, c, ldc)
					gonum.Implementation{}.Dgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, want, ldc)
					sameFloats(t, "C", c, want)
				})
			}
		}
	}
}

// checkTrsm checks tr's Dtrsm against gonum's for both sides, triangles,
// transpositions and diagonals, with padded strides.
func checkTrsm(t *testing.T, tr trsmer) {
	rng := rand.New(rand.NewPCG(6, 6))
	for _, sh := range [][2]int{{200, 150}, {150, 200}, {3, 5}, {40, 30}} {
		m, n := sh[0], sh[1]
		for _, side := range []blas.Side{blas.Left, blas.Right} {
			for _, ul := range []blas.Uplo{blas.Upper, blas.Lower} {
				for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
					for _, d := range []blas.Diag{blas.NonUnit, blas.Unit} {
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
						b := fillRand(rng, m*ldb)
						want := append([]float64(nil), b...)
						tr.Dtrsm(side, ul, tA, d, m, n, 0.5, a, lda, b, ldb)
						gonum.Implementation{}.Dtrsm(side, ul, tA, d, m, n, 0.5, a, lda, want, ldb)
						sameFloats(t, fmt.Sprintf("%dx%d side %c uplo %c trans %c diag %c", m, n, side, ul, tA, d), b, want)
					}
				}
			}
		}
	}
}

func randSym(rng *rand.Rand, n int, pd bool) *mat.SymDense {
	x := mat.NewDense(n, n+2, nil)
	x.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, x)
	s := mat.NewSymDense(n, nil)
	if pd {
		s.SymOuterK(1, x)
		return s
	}
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			s.SetSym(i, j, x.At(i, j))
		}
	}
	return s
}

func eye(n int) *mat.Dense {
	d := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		d.Set(i, i, 1)
	}
	return d
}

type dsyever interface {
	Dsyev(jobz lapack.EVJob, uplo blas.Uplo, n int, a []float64, lda int, w, work []float64, lwork int) bool
}

// checkEigenSym checks mat.EigenSym (on the installed LAPACK) against the
// definition A v = λ v and orthonormality, and impl's Dsyev against gonum's
// eigenvalues, for both triangles and a padded stride.
func checkEigenSym(t *testing.T, impl dsyever) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{1, 2, 7, 60, 301} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			a := randSym(rng, n, false)
			var e mat.EigenSym
			if !e.Factorize(a, true) {
				t.Fatal("factorization failed")
			}
			var v mat.Dense
			e.VectorsTo(&v)
			vals := e.Values(nil)
			var av, vl, vtv mat.Dense
			av.Mul(a, &v)
			vl.Mul(&v, mat.NewDiagDense(n, vals))
			if !mat.EqualApprox(&av, &vl, 1e-9*float64(n)) {
				t.Error("A V != V Λ")
			}
			vtv.Mul(v.T(), &v)
			if !mat.EqualApprox(&vtv, eye(n), 1e-10*float64(n)) {
				t.Error("Vᵀ V != I")
			}
			for _, uplo := range []blas.Uplo{blas.Upper, blas.Lower} {
				lda := n + 3
				raw := make([]float64, (n-1)*lda+n)
				for i := 0; i < n; i++ {
					for j := 0; j < n; j++ {
						raw[i*lda+j] = a.At(i, j)
					}
				}
				ref := append([]float64(nil), raw...)
				w, wref := make([]float64, n), make([]float64, n)
				work := make([]float64, 1)
				impl.Dsyev(lapack.EVNone, uplo, n, raw, lda, w, work, -1)
				if !impl.Dsyev(lapack.EVNone, uplo, n, raw, lda, w, work, 1) {
					t.Fatal("Dsyev failed")
				}
				lapackgonum.Implementation{}.Dsyev(lapack.EVNone, uplo, n, ref, lda, wref, work, -1)
				gw := make([]float64, int(work[0]))
				lapackgonum.Implementation{}.Dsyev(lapack.EVNone, uplo, n, ref, lda, wref, gw, len(gw))
				for i := range w {
					if math.Abs(w[i]-wref[i]) > 1e-9*float64(n) {
						t.Fatalf("uplo %c: eigenvalue %d: %v, gonum %v", uplo, i, w[i], wref[i])
					}
				}
			}
		})
	}
}

type dpotrfer interface {
	Dpotrf(ul blas.Uplo, n int, a []float64, lda int) bool
}

// checkCholesky checks mat.Cholesky (on the installed LAPACK) against the
// reconstruction Uᵀ U = A and that an indefinite matrix is refused, and
// impl's Dpotrf against gonum's on both triangles with a padded stride.
func checkCholesky(t *testing.T, impl dpotrfer) {
	rng := rand.New(rand.NewPCG(10, 10))
	for _, n := range []int{1, 5, 64, 257} {
		a := randSym(rng, n, true)
		var c mat.Cholesky
		if !c.Factorize(a) {
			t.Fatalf("n=%d: positive definite matrix refused", n)
		}
		var u mat.TriDense
		c.UTo(&u)
		var r mat.Dense
		r.Mul(u.T(), &u)
		if !mat.EqualApprox(&r, a, 1e-9*float64(n)) {
			t.Errorf("n=%d: Uᵀ U != A", n)
		}
		neg := mat.NewSymDense(n, nil)
		neg.CopySym(a)
		neg.SetSym(n-1, n-1, -1)
		if c.Factorize(neg) {
			t.Errorf("n=%d: indefinite matrix accepted", n)
		}
		for _, ul := range []blas.Uplo{blas.Upper, blas.Lower} {
			lda := n + 2
			raw := make([]float64, (n-1)*lda+n)
			for i := 0; i < n; i++ {
				for j := 0; j < n; j++ {
					raw[i*lda+j] = a.At(i, j)
				}
			}
			ref := append([]float64(nil), raw...)
			if !impl.Dpotrf(ul, n, raw, lda) || !(lapackgonum.Implementation{}).Dpotrf(ul, n, ref, lda) {
				t.Fatalf("n=%d uplo %c: Dpotrf failed", n, ul)
			}
			sameFloats(t, fmt.Sprintf("n=%d uplo %c: Dpotrf", n, ul), raw, ref)
		}
	}
}

// benchRawDgemm times square products of small to large size on g, one
// call at a time (no split), for the per-call overhead of a backend:
//
//	go test -run '^$' -bench RawDgemm .
//	go test -tags openblas -run '^$' -bench RawDgemm .
func benchRawDgemm(b *testing.B, name string, g gemmer) {
	for _, n := range []int{4, 10, 16, 32, 100, 250} {
		b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			x, c := fillRand(rng, n*n), make([]float64, n*n)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g.Dgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, x, n, x, n, 0, c, n)
			}
		})
	}
}
