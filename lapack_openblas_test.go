//go:build openblas && cgo

package secondorder

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack"
	lapackgonum "gonum.org/v1/gonum/lapack/gonum"
	"gonum.org/v1/gonum/mat"
)

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

// TestOpenBLASEigenSym checks mat.EigenSym on OpenBLAS's dsyevd against the
// definition A v = λ v, orthonormality, and gonum's own eigenvalues, for
// both triangles and a padded stride.
func TestOpenBLASEigenSym(t *testing.T) {
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
			// gonum's own Dsyev on the lower triangle, with a padded stride.
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
				(openblasLAPACK{}).Dsyev(lapack.EVNone, uplo, n, raw, lda, w, work, -1)
				if !(openblasLAPACK{}).Dsyev(lapack.EVNone, uplo, n, raw, lda, w, work, 1) {
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

// TestOpenBLASCholesky checks mat.Cholesky on OpenBLAS's dpotrf against
// the reconstruction Uᵀ U = A, and that an indefinite matrix is refused.
func TestOpenBLASCholesky(t *testing.T) {
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
	}
}

func eye(n int) *mat.Dense {
	d := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		d.Set(i, i, 1)
	}
	return d
}
