package kron

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// LUKron applies (A⊗B)⁻¹ = A⁻¹⊗B⁻¹ (thesis §3.3.2) for general square
// factors A (n_A×n_A) and B (n_B×n_B), through LU factorizations with partial
// pivoting. In matrix form,
//
//	(A⊗B)⁻¹ vec(X) = vec(B⁻¹ X A⁻ᵀ),   X of size n_B×n_A.
//
// Factorize costs O(n_A³ + n_B³), each solve O(n_A n_B (n_A + n_B)) plus a
// transposition. For symmetric positive definite factors CholeskyKron is
// about twice as fast. The zero value is ready for Factorize. An LUKron is
// not safe for concurrent use, its solves included: they share workspace.
type LUKron struct {
	a, b   mat.LU
	na, nb int
	ok     bool
	tm, tv mat.Dense // n_A×n_B and n_B×n_A workspaces
	vbuf   []float64
}

// Factorize computes the LU factorizations of A and B. If a factor is
// singular it returns a *FactorError wrapping ErrSingular, and the receiver
// must not be used for solves until a later Factorize succeeds. If a factor
// is merely ill-conditioned (condition number above mat.ConditionTolerance)
// it returns a *FactorError wrapping the mat.Condition; the factorization is
// then kept and solves are allowed, but may be inaccurate.
func (k *LUKron) Factorize(a, b mat.Matrix) error {
	k.ok = false
	k.na = squareDim(a, "LUKron.Factorize", "A")
	k.nb = squareDim(b, "LUKron.Factorize", "B")
	k.a.Factorize(a)
	k.b.Factorize(b)
	var cerr error
	for _, f := range []struct {
		name string
		lu   *mat.LU
	}{{"A", &k.a}, {"B", &k.b}} {
		c := f.lu.Cond()
		if math.IsInf(c, 1) || math.IsNaN(c) {
			return &FactorError{Factor: f.name, Err: ErrSingular}
		}
		if c > mat.ConditionTolerance && cerr == nil {
			cerr = &FactorError{Factor: f.name, Err: mat.Condition(c)}
		}
	}
	k.ok = true
	return cerr
}

// Dims returns the sizes n_A and n_B of the factors.
func (k *LUKron) Dims() (na, nb int) { return k.na, k.nb }

func (k *LUKron) check(op string) {
	if !k.ok {
		panic("kron: " + op + ": no valid factorization")
	}
}

// Solve writes into dst the matrix form of (A⊗B)⁻¹ vec(X), B⁻¹ X A⁻ᵀ, for X
// of size n_B×n_A. An empty dst is resized; dst may be x.
func (k *LUKron) Solve(dst *mat.Dense, x mat.Matrix) {
	k.check("LUKron.Solve")
	checkDims(x, k.nb, k.na, "LUKron.Solve", "X")
	reuseDense(dst, k.nb, k.na, "LUKron.Solve")
	workspace(&k.tm, k.na, k.nb)
	// Condition errors were reported by Factorize.
	_ = k.b.SolveTo(dst, false, x)         // Z = B⁻¹ X
	_ = k.a.SolveTo(&k.tm, false, dst.T()) // Yᵀ = A⁻¹ Zᵀ
	dst.Copy(k.tm.T())
}

// SolveVec writes (A⊗B)⁻¹ v into dst, for v of length n_A n_B, working on the
// storage of the vec read as Xᵀ (n_A×n_B): unvec(dst)ᵀ = A⁻¹ Xᵀ B⁻ᵀ. An
// empty dst is resized; dst may be v.
func (k *LUKron) SolveVec(dst *mat.VecDense, v mat.Vector) {
	k.check("LUKron.SolveVec")
	na, nb := k.na, k.nb
	checkLen(v, na*nb, "LUKron.SolveVec", "v")
	reuseVec(dst, na*nb, "LUKron.SolveVec")
	workspace(&k.tv, nb, na)
	solveVecInPlace(dst, v, &k.vbuf, func(xt []float64) {
		m := mat.NewDense(na, nb, xt)
		_ = k.a.SolveTo(m, false, m)         // Z = A⁻¹ Xᵀ
		_ = k.b.SolveTo(&k.tv, false, m.T()) // Wᵀ = B⁻¹ Zᵀ, W = Z B⁻ᵀ
		m.Copy(k.tv.T())
	})
}
