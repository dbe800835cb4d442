package kron

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// AugmentedInverse is the closed-form inverse of the damped, bias-augmented
// second moment of a layer's input (thesis §3.3.3, with the Tikhonov term of
// §3.4.2),
//
//	M = [ S + λ'I   μ      ]     S = E[h hᵀ] (n×n),  μ = E[h],  λ' ≥ 0,
//	    [ μᵀ        1 + λ' ],
//
// applied from the right to a gradient in matrix form ∇Θ = [∇W ∇b].
//
// Derivation. Let d = 1 + λ' and take the Schur complement of the
// bottom-right scalar d:
//
//	C' = S + λ'I − μμᵀ/d,
//
//	M⁻¹ = [ C'⁻¹           −C'⁻¹μ/d            ]
//	      [ −μᵀC'⁻¹/d      1/d + μᵀC'⁻¹μ/d²    ],
//
// as one checks by multiplying out M M⁻¹ = I. With the covariance
// C = S − μμᵀ,
//
//	C' = C + λ'I + (λ'/(1+λ')) μμᵀ,
//
// which is positive definite whenever λ' > 0 (C being positive semidefinite),
// and equals C when λ' = 0: then M⁻¹ is the inverse of §3.3.3,
// [[C⁻¹, −C⁻¹μ], [−μᵀC⁻¹, 1 + μᵀC⁻¹μ]]. Applied from the right,
//
//	[ΔW Δb] = [∇W ∇b] M⁻¹:   ΔW = (∇W − ∇b μᵀ/d) C'⁻¹,   Δb = (∇b − ΔW μ)/d.
//
// With λ' = 0 and ∇W = (1/n) Σ_j ∇_{a_j} h_jᵀ, ∇b = (1/n) Σ_j ∇_{a_j}, this is
// eq. 3.3.3, ΔW = (1/n) Σ_j ∇_{a_j} (h_j − μ)ᵀ C⁻¹, and the corrected eq.
// 3.3.4, Δb = ∇b − ΔW μ (the thesis prints a spurious extra 1/n).
//
// Use in the amortized covariance preconditioner (§3.4.2): the damped
// preconditioner M₀⊗αI + λI, with M₀ the undamped augmented moment, equals
// M⊗αI with λ' = λ/α, so its inverse applied to vec(∇Θ) is (1/α) vec(∇Θ M⁻¹):
// factorize with damping λ/α and scale the result of Precondition by 1/α.
//
// Factorize costs O(n³) (a Cholesky factorization of C'); Precondition costs
// O(n_out n²) for an n_out×(n+1) gradient (a rank-one update, two triangular
// solves and a matrix-vector product) and does not allocate. The zero value,
// with Retry set as wanted, is ready for Factorize.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// (kind "kron.AugmentedInverse"): a restored factorization solves bit for
// bit as the saved one.
//
// An AugmentedInverse is not safe for concurrent use, its solves included:
// they share workspace.
type AugmentedInverse struct {
	// Retry is the policy applied when C' is not positive definite.
	// Default: no retry, the error is returned.
	Retry Retry

	chol    cholFactor
	mu      []float64
	d       float64
	damping float64
	ok      bool
	gbuf    []float64
}

// Factorize computes the Cholesky factorization of C' = S + λ'I − μμᵀ/(1+λ')
// from the second moment S = E[h hᵀ] (n×n), the mean μ (length n) and the
// damping λ' ≥ 0. If C' is not positive definite, λ' is multiplied by
// Retry.Growth and C' refactorized, up to Retry.Tries attempts in all
// (λ' = 0 is not retried); Damping reports the λ' finally used. When all
// attempts fail it returns a *FactorError with Factor "C'" wrapping
// ErrNotPositiveDefinite, and the receiver must not be used until a later
// Factorize succeeds.
func (m *AugmentedInverse) Factorize(second mat.Symmetric, mu mat.Vector, damping float64) error {
	return m.factorize(second, mu, damping, false)
}

// FactorizeCov is Factorize given the covariance C = E[(h−μ)(h−μ)ᵀ] instead
// of the second moment: C' = C + λ'I + (λ'/(1+λ')) μμᵀ.
func (m *AugmentedInverse) FactorizeCov(cov mat.Symmetric, mu mat.Vector, damping float64) error {
	return m.factorize(cov, mu, damping, true)
}

func (m *AugmentedInverse) factorize(s mat.Symmetric, mu mat.Vector, damping float64, cov bool) error {
	const op = "AugmentedInverse.Factorize"
	checkDamping(damping, op)
	n := s.SymmetricDim()
	checkLen(mu, n, op, "μ")
	m.ok = false
	m.mu = grow(&m.mu, n)
	for i := range m.mu {
		m.mu[i] = mu.AtVec(i)
	}
	damping, err := m.Retry.Run(damping, 0, func(damping float64) error {
		d := 1 + damping
		m.chol.load(s)
		m.chol.addDiag(damping)
		if cov {
			m.chol.addRankOne(damping/d, m.mu)
		} else {
			m.chol.addRankOne(-1/d, m.mu)
		}
		if !m.chol.factor() {
			return &FactorError{Factor: "C'", Damping: damping, Err: ErrNotPositiveDefinite}
		}
		return nil
	})
	if err != nil {
		return err
	}
	m.d = 1 + damping
	m.damping = damping
	m.ok = true
	return nil
}

// Dim returns n, the size of h; M is (n+1)×(n+1).
func (m *AugmentedInverse) Dim() int { return m.chol.n }

// Damping returns the λ' of the last successful Factorize, which exceeds the
// requested one when retries were needed.
func (m *AugmentedInverse) Damping() float64 { return m.damping }

func (m *AugmentedInverse) check(op string) {
	if !m.ok {
		panic("kron: " + op + ": no valid factorization")
	}
}

// Precondition computes [ΔW Δb] = [∇W ∇b] M⁻¹ with the weight and bias parts
// apart: ΔW = (∇W − ∇b μᵀ/d) C'⁻¹ into dw (r×n) and Δb = (∇b − ΔW μ)/d into
// db (length r), for gw (r×n) and gb (length r), d = 1 + λ'. Empty
// destinations are resized; dw may be gw and db may be gb.
func (m *AugmentedInverse) Precondition(dw *mat.Dense, db *mat.VecDense, gw mat.Matrix, gb mat.Vector) {
	const op = "AugmentedInverse.Precondition"
	m.check(op)
	n := m.chol.n
	r, c := gw.Dims()
	if c != n {
		panic(fmt.Sprintf("kron: %s: ∇W is %d×%d, want %d columns", op, r, c, n))
	}
	checkLen(gb, r, op, "∇b")
	reuseDense(dw, r, n, op)
	reuseVec(db, r, op)
	g := grow(&m.gbuf, r)
	for i := range g {
		g[i] = gb.AtVec(i)
	}
	if gw != mat.Matrix(dw) {
		dw.Copy(gw)
	}
	raw := dw.RawMatrix()
	mu := blas64.Vector{N: n, Inc: 1, Data: m.mu}
	blas64.Ger(-1/m.d, blas64.Vector{N: r, Inc: 1, Data: g}, mu, raw)
	m.chol.solveRight(raw)
	blas64.Gemv(blas.NoTrans, -1, raw, mu, 1, blas64.Vector{N: r, Inc: 1, Data: g})
	for i, v := range g {
		db.SetVec(i, v/m.d)
	}
}

// MulRight writes [∇W ∇b] M⁻¹ into dst for g = [∇W ∇b] of size r×(n+1),
// the bias gradient in the last column. An empty dst is resized; dst may be
// g. See Precondition for the formulas and cost.
func (m *AugmentedInverse) MulRight(dst, g *mat.Dense) {
	const op = "AugmentedInverse.MulRight"
	m.check(op)
	n := m.chol.n
	r, c := g.Dims()
	if c != n+1 {
		panic(fmt.Sprintf("kron: %s: gradient is %d×%d, want %d columns", op, r, c, n+1))
	}
	reuseDense(dst, r, n+1, op)
	dw := dst.Slice(0, r, 0, n).(*mat.Dense)
	db := dst.ColView(n).(*mat.VecDense)
	m.Precondition(dw, db, g.Slice(0, r, 0, n), g.ColView(n))
}

// InverseTo writes the dense M⁻¹ ((n+1)×(n+1)) into dst, at cost O(n³); it is
// meant for tests and inspection. An empty dst is resized.
func (m *AugmentedInverse) InverseTo(dst *mat.SymDense) {
	n := m.startDense(dst, "AugmentedInverse.InverseTo")
	var ci mat.SymDense
	m.chol.inverseTo(&ci)
	var w mat.VecDense
	w.MulVec(&ci, mat.NewVecDense(n, m.mu))
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			dst.SetSym(i, j, ci.At(i, j))
		}
		dst.SetSym(i, n, -w.AtVec(i)/m.d)
	}
	dst.SetSym(n, n, 1/m.d+mat.Dot(&w, mat.NewVecDense(n, m.mu))/(m.d*m.d))
}

// AugmentedTo writes the damped augmented matrix M ((n+1)×(n+1)) itself into
// dst, rebuilt from the factorization at cost O(n³); it is meant for tests
// and inspection. An empty dst is resized.
func (m *AugmentedInverse) AugmentedTo(dst *mat.SymDense) {
	n := m.startDense(dst, "AugmentedInverse.AugmentedTo")
	var cp mat.SymDense
	m.chol.toSym(&cp)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			dst.SetSym(i, j, cp.At(i, j)+m.mu[i]*m.mu[j]/m.d)
		}
		dst.SetSym(i, n, m.mu[i])
	}
	dst.SetSym(n, n, m.d)
}

// startDense begins InverseTo and AugmentedTo: it panics before a
// successful factorization, sizes dst (n+1)×(n+1) and returns n.
func (m *AugmentedInverse) startDense(dst *mat.SymDense, op string) int {
	m.check(op)
	n := m.chol.n
	reuseSym(dst, n+1, op)
	return n
}

func reuseSym(dst *mat.SymDense, n int, op string) {
	if dst.IsEmpty() {
		dst.ReuseAsSym(n)
		return
	}
	if dn := dst.SymmetricDim(); dn != n {
		panic(fmt.Sprintf("kron: %s: destination is %d×%d, want %d×%d", op, dn, dn, n, n))
	}
}
