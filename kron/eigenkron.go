package kron

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// EigenKron solves exactly with the damped Kronecker-factored matrix
// A⊗B + λI, for symmetric positive semidefinite A (n_A×n_A) and B (n_B×n_B),
// through the eigendecompositions A = Q_A Λ_A Q_Aᵀ and B = Q_B Λ_B Q_Bᵀ
// (Martens & Grosse 2015, §6.3, "exact" damping; thesis §3.5.1):
//
//	A⊗B + λI = (Q_A⊗Q_B) (Λ_A⊗Λ_B + λI) (Q_A⊗Q_B)ᵀ,
//	(A⊗B + λI)⁻¹ v = (Q_A⊗Q_B) ((Q_A⊗Q_B)ᵀ v ./ (λ_A⊗λ_B + λ)),
//
// which in matrix form (v = vec(X), X of size n_B×n_A) reads
//
//	Y = Q_B ((Q_Bᵀ X Q_A) ./ (λ_B λ_Aᵀ + λ)) Q_Aᵀ.
//
// The eigendecompositions are computed once by Factorize, at cost
// O(n_A³ + n_B³) (with a larger constant than Cholesky), and serve any number
// of solves with any λ ≥ 0; each solve costs four matrix products,
// O(n_A n_B (n_A + n_B)), without allocation. The zero value is ready for
// Factorize. An EigenKron is not safe for concurrent use, its solves
// included: they share workspace.
type EigenKron struct {
	qa, qb mat.Dense
	la, lb []float64
	ok     bool
	// wm (n_B×n_A) and wv (n_A×n_B) share their storage.
	wm, wv mat.Dense
	vbuf   []float64
}

// Factorize computes the eigendecompositions of A and B. Eigenvalues that are
// negative by no more than √ε·max|λ| (rounding error) are set to zero. If a
// factor has an eigenvalue below that it returns a *FactorError wrapping
// ErrNotPositiveSemidefinite, and if an eigendecomposition fails one wrapping
// ErrNoConvergence; the receiver must then not be used for solves until a
// later Factorize succeeds.
func (e *EigenKron) Factorize(a, b mat.Symmetric) error {
	e.ok = false
	var err error
	if e.la, err = eigenTo(&e.qa, e.la, a, "A"); err != nil {
		return err
	}
	if e.lb, err = eigenTo(&e.qb, e.lb, b, "B"); err != nil {
		return err
	}
	na, nb := len(e.la), len(e.lb)
	w := make([]float64, na*nb)
	e.wm.SetRawMatrix(general(nb, na, w))
	e.wv.SetRawMatrix(general(na, nb, w))
	e.ok = true
	return nil
}

func eigenTo(q *mat.Dense, vals []float64, a mat.Symmetric, name string) ([]float64, error) {
	var eig mat.EigenSym
	if !eig.Factorize(a, true) {
		return vals, &FactorError{Factor: name, Err: ErrNoConvergence}
	}
	n := a.SymmetricDim()
	if cap(vals) < n {
		vals = make([]float64, n)
	}
	vals = eig.Values(vals[:n])
	q.Reset()
	eig.VectorsTo(q)
	big := 0.0
	for _, v := range vals {
		big = math.Max(big, math.Abs(v))
	}
	tol := math.Sqrt(eps) * big
	for i, v := range vals {
		switch {
		case math.IsNaN(v) || v < -tol:
			return vals, &FactorError{Factor: name, Err: ErrNotPositiveSemidefinite}
		case v < 0:
			vals[i] = 0
		}
	}
	return vals, nil
}

// eps is the machine epsilon of float64.
const eps = 0x1p-52

// Dims returns the sizes n_A and n_B of the factors.
func (e *EigenKron) Dims() (na, nb int) { return len(e.la), len(e.lb) }

// Values returns the eigenvalues of A and of B, in ascending order, with the
// rounding-error negatives set to zero. The slices are the receiver's and
// must not be modified.
func (e *EigenKron) Values() (a, b []float64) { return e.la, e.lb }

func (e *EigenKron) check(op string, lambda float64) error {
	if !e.ok {
		panic("kron: " + op + ": no valid factorization")
	}
	checkDamping(lambda, op)
	if lambda == 0 {
		// Eigenvalues are ≥ 0 and sorted; A⊗B is singular to working
		// precision if A or B is.
		if singular(e.la) {
			return &FactorError{Factor: "A", Err: ErrSingular}
		}
		if singular(e.lb) {
			return &FactorError{Factor: "B", Err: ErrSingular}
		}
	}
	return nil
}

// Solve writes into dst the matrix form of (A⊗B + λI)⁻¹ vec(X), for X of size
// n_B×n_A. An empty dst is resized; dst may be x. It panics if λ is negative
// and returns a *FactorError wrapping ErrSingular, leaving dst unchanged, if
// λ = 0 and A or B is singular to working precision (its smallest
// eigenvalue at most n·ε times its largest).
func (e *EigenKron) Solve(dst *mat.Dense, x mat.Matrix, lambda float64) error {
	if err := e.check("EigenKron.Solve", lambda); err != nil {
		return err
	}
	na, nb := e.Dims()
	checkDims(x, nb, na, "EigenKron.Solve", "X")
	reuseDense(dst, nb, na, "EigenKron.Solve")
	eigenSolve(dst, x, &e.wm, &e.qb, &e.qa, e.lb, e.la, lambda)
	return nil
}

// SolveVec writes (A⊗B + λI)⁻¹ v into dst, for v of length n_A n_B, working
// on the storage of the vec read as Xᵀ (n_A×n_B). Errors and panics are
// those of Solve; dst may be v.
func (e *EigenKron) SolveVec(dst *mat.VecDense, v mat.Vector, lambda float64) error {
	if err := e.check("EigenKron.SolveVec", lambda); err != nil {
		return err
	}
	na, nb := e.Dims()
	checkLen(v, na*nb, "EigenKron.SolveVec", "v")
	reuseVec(dst, na*nb, "EigenKron.SolveVec")
	solveVecInPlace(dst, v, &e.vbuf, func(xt []float64) {
		m := mat.NewDense(na, nb, xt)
		eigenSolve(m, m, &e.wv, &e.qa, &e.qb, e.la, e.lb, lambda)
	})
	return nil
}

// eigenSolve writes into dst (n1×n2) Q1 ((Q1ᵀ X Q2) ./ (l1 l2ᵀ + λ)) Q2ᵀ,
// using w (n1×n2) as workspace. dst may be x.
func eigenSolve(dst *mat.Dense, x mat.Matrix, w, q1, q2 *mat.Dense, l1, l2 []float64, lambda float64) {
	w.Mul(q1.T(), x)
	dst.Mul(w, q2)
	raw := dst.RawMatrix()
	for i, li := range l1 {
		row := raw.Data[i*raw.Stride : i*raw.Stride+len(l2)]
		for j, lj := range l2 {
			row[j] /= li*lj + lambda
		}
	}
	w.Mul(dst, q2.T())
	dst.Mul(q1, w)
}

// singular reports whether the sorted nonnegative eigenvalues vals have
// their smallest at most n·ε times their largest.
func singular(vals []float64) bool {
	return vals[0] <= float64(len(vals))*eps*vals[len(vals)-1]
}
