package kron

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// FactoredTikhonov applies the factored Tikhonov approximation of
// Martens & Grosse 2015 (§6.3) to the inverse of a damped
// Kronecker-factored block:
//
//	(A⊗B + λI)⁻¹ ≈ (A + π√λ I)⁻¹ ⊗ (B + (√λ/π) I)⁻¹,
//	π = sqrt( (tr(A)/n_A) / (tr(B)/n_B) ),
//
// for symmetric positive semidefinite A (n_A×n_A) and B (n_B×n_B). Expanding
// the damped product,
//
//	(A + π√λ I) ⊗ (B + (√λ/π) I) = A⊗B + λI + √λ (π I⊗B + (1/π) A⊗I),
//
// the approximation adds the cross term √λ(π I⊗B + A⊗I/π), whose trace
// √λ(π n_A tr B + n_B tr A/π) the above π minimizes (Martens & Grosse's
// trace-norm choice). It is exact only when λ = 0. For a layer's K-FAC block
// F ≈ Ā⊗G, A is the input-side factor Ā and B the output-side factor G.
//
// The damped factors are factorized by Cholesky, at cost O(n_A³ + n_B³) but
// several times cheaper than the eigendecompositions of EigenKron; a solve
// costs
// O(n_A n_B (n_A + n_B)), four triangular solves done in place without
// allocation. The zero value, with its exported fields set as wanted, is
// ready for Factorize.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// (kind "kron.FactoredTikhonov"): a restored factorization solves bit for
// bit as the saved one.
//
// A FactoredTikhonov is not safe for concurrent use: Factorize modifies it and
// SolveVec uses its workspace.
type FactoredTikhonov struct {
	// UnitPi sets π = 1 instead of the trace-norm π. Default false.
	UnitPi bool
	// Retry is the policy applied when a damped factor is not positive
	// definite. Default: no retry, the error is returned.
	Retry Retry

	k       CholeskyKron
	pi      float64
	damping float64
}

// Factorize computes the Cholesky factorizations of A + π√λ I and
// B + (√λ/π) I. π is the trace-norm choice, or 1 if UnitPi is set or if
// tr(A) or tr(B) is not positive (π is then undefined).
//
// If a damped factor is not positive definite, λ is multiplied by
// Retry.Growth and both factors are refactorized, up to Retry.Tries attempts
// in all (λ = 0 is not retried). Damping reports the λ of the successful
// attempt. When all attempts fail, Factorize returns a *FactorError wrapping
// ErrNotPositiveDefinite that names the factor and the last damping tried,
// and the receiver must not be used for solves until a later Factorize
// succeeds. It panics if λ is negative or A, B have no positive size.
func (f *FactoredTikhonov) Factorize(a, b mat.Symmetric, lambda float64) error {
	checkDamping(lambda, "FactoredTikhonov.Factorize")
	f.k.ok = false
	f.pi = 1
	if !f.UnitPi {
		ta := mat.Trace(a) / float64(a.SymmetricDim())
		tb := mat.Trace(b) / float64(b.SymmetricDim())
		if ta > 0 && tb > 0 && !math.IsInf(ta, 0) && !math.IsInf(tb, 0) {
			f.pi = math.Sqrt(ta / tb)
		}
	}
	lambda, err := f.Retry.Run(lambda, 0, func(lambda float64) error { return f.factorize(a, b, lambda) })
	if err != nil {
		return err
	}
	f.damping = lambda
	f.k.ok = true
	return nil
}

func (f *FactoredTikhonov) factorize(a, b mat.Symmetric, lambda float64) error {
	ga, gb := f.shifts(lambda)
	f.k.a.load(a)
	f.k.a.addDiag(ga)
	if !f.k.a.factor() {
		return &FactorError{Factor: "A", Damping: lambda, Err: ErrNotPositiveDefinite}
	}
	f.k.b.load(b)
	f.k.b.addDiag(gb)
	if !f.k.b.factor() {
		return &FactorError{Factor: "B", Damping: lambda, Err: ErrNotPositiveDefinite}
	}
	return nil
}

func (f *FactoredTikhonov) shifts(lambda float64) (ga, gb float64) {
	s := math.Sqrt(lambda)
	return f.pi * s, s / f.pi
}

// Pi returns the π of the last Factorize.
func (f *FactoredTikhonov) Pi() float64 { return f.pi }

// Damping returns the λ of the last successful Factorize, which exceeds the
// requested one when retries were needed.
func (f *FactoredTikhonov) Damping() float64 { return f.damping }

// Shifts returns the terms added to the diagonals of A and B by the last
// successful Factorize, π√λ and √λ/π.
func (f *FactoredTikhonov) Shifts() (ga, gb float64) { return f.shifts(f.damping) }

// Dims returns the sizes n_A and n_B of the factors.
func (f *FactoredTikhonov) Dims() (na, nb int) { return f.k.Dims() }

// Solve writes into dst the matrix form of the approximate
// (A⊗B + λI)⁻¹ vec(X), (B + (√λ/π) I)⁻¹ X (A + π√λ I)⁻¹, for X of size
// n_B×n_A. For a K-FAC block this turns the gradient ∇Θ = [∇W ∇b] into the
// update. An empty dst is resized; dst may be x.
func (f *FactoredTikhonov) Solve(dst *mat.Dense, x mat.Matrix) {
	f.k.check("FactoredTikhonov.Solve")
	f.k.Solve(dst, x)
}

// SolveOuter is Solve for X = scale · Lᵀ R given by its factors (see
// CholeskyKron.SolveOuter); L and R are overwritten.
func (f *FactoredTikhonov) SolveOuter(dst *mat.Dense, scale float64, l, r *mat.Dense) {
	f.k.check("FactoredTikhonov.SolveOuter")
	f.k.SolveOuter(dst, scale, l, r)
}

// UseOuter reports whether SolveOuter with m rows is cheaper than Solve.
func (f *FactoredTikhonov) UseOuter(m int) bool { return f.k.UseOuter(m) }

// SolveVec writes the approximate (A⊗B + λI)⁻¹ v into dst, for v of length
// n_A n_B. An empty dst is resized; dst may be v.
func (f *FactoredTikhonov) SolveVec(dst *mat.VecDense, v mat.Vector) {
	f.k.check("FactoredTikhonov.SolveVec")
	f.k.SolveVec(dst, v)
}
