package kron_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// tol is the relative tolerance of the comparisons with dense references,
// for the moderately conditioned random matrices below.
const tol = 1e-10

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6b726f6e)) }

// randDense returns an r×c matrix of values drawn from N(0, 1).
func randDense(rng *rand.Rand, r, c int) *mat.Dense { return testutil.RandDense(rng, r, c, 1) }

// randPSD returns X Xᵀ/k + shift I with X of size n×k: positive definite
// when k ≥ n or shift > 0, of rank k otherwise.
func randPSD(rng *rand.Rand, n, k int, shift float64) *mat.SymDense {
	x := randDense(rng, n, k)
	var s mat.SymDense
	s.SymOuterK(1/float64(k), x)
	for i := 0; i < n; i++ {
		s.SetSym(i, i, s.At(i, i)+shift)
	}
	return &s
}

// randSPD returns a well-conditioned symmetric positive definite matrix.
func randSPD(rng *rand.Rand, n int) *mat.SymDense { return randPSD(rng, n, n+2, 0.5) }

// symWithEigen returns Q diag(vals) Qᵀ for a random orthogonal Q.
func symWithEigen(rng *rand.Rand, vals []float64) *mat.SymDense {
	n := len(vals)
	var qr mat.QR
	qr.Factorize(randDense(rng, n, n))
	var q mat.Dense
	qr.QTo(&q)
	var s mat.SymDense
	s.ReuseAsSym(n)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			v := 0.0
			for k := 0; k < n; k++ {
				v += q.At(i, k) * vals[k] * q.At(j, k)
			}
			s.SetSym(i, j, v)
		}
	}
	return &s
}

func dense(m mat.Matrix) *mat.Dense { return mat.DenseCopyOf(m) }

func kronDense(a, b mat.Matrix) *mat.Dense {
	var k mat.Dense
	kron.Product(&k, a, b)
	return &k
}

func vecOf(x mat.Matrix) *mat.VecDense {
	var v mat.VecDense
	kron.Vec(&v, x)
	return &v
}

func addDiag(m *mat.Dense, s float64) *mat.Dense {
	r, _ := m.Dims()
	d := mat.DenseCopyOf(m)
	for i := 0; i < r; i++ {
		d.Set(i, i, d.At(i, i)+s)
	}
	return d
}

// denseSolve returns m⁻¹ v by a dense LU solve.
func denseSolve(t *testing.T, m mat.Matrix, v mat.Vector) *mat.VecDense {
	t.Helper()
	var x mat.VecDense
	if err := x.SolveVec(m, v); err != nil {
		t.Fatalf("dense reference solve: %v", err)
	}
	return &x
}

func denseInverse(t *testing.T, m mat.Matrix) *mat.Dense {
	t.Helper()
	var inv mat.Dense
	if err := inv.Inverse(m); err != nil {
		t.Fatalf("dense reference inverse: %v", err)
	}
	return &inv
}

func checkApprox(t *testing.T, name string, got, want mat.Matrix, tol float64) {
	t.Helper()
	if !mat.EqualApprox(got, want, tol) {
		t.Errorf("%s: not equal within %g\ngot  %v\nwant %v", name, tol,
			mat.Formatted(got, mat.Prefix("     "), mat.Excerpt(4)),
			mat.Formatted(want, mat.Prefix("     "), mat.Excerpt(4)))
	}
}

func checkVecApprox(t *testing.T, name string, got, want mat.Vector, tol float64) {
	t.Helper()
	if !mat.EqualApprox(got, want, tol) {
		t.Errorf("%s: not equal within %g\ngot  %v\nwant %v", name, tol,
			mat.Formatted(got.T(), mat.Excerpt(6)), mat.Formatted(want.T(), mat.Excerpt(6)))
	}
}

// checkFactorError checks that err is a *kron.FactorError naming factor and
// wrapping target.
func checkFactorError(t *testing.T, err, target error, factor string) *kron.FactorError {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want one wrapping %v", err, target)
	}
	var fe *kron.FactorError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v is not a *kron.FactorError", err)
	}
	if fe.Factor != factor {
		t.Errorf("FactorError.Factor = %q, want %q", fe.Factor, factor)
	}
	if !strings.HasPrefix(err.Error(), "kron: ") {
		t.Errorf("error %q lacks the kron: prefix", err)
	}
	return fe
}

// panics reports whether f panics with a message starting with "kron: ".
func panics(t *testing.T, name string, f func()) {
	t.Helper()
	msg, panicked := testutil.Recover(f)
	if !panicked {
		t.Errorf("%s: did not panic", name)
		return
	}
	if !strings.HasPrefix(msg, "kron: ") {
		t.Errorf("%s: panic %q lacks the kron: prefix", name, msg)
	}
}

func sqrt(x float64) float64 { return math.Sqrt(x) }
