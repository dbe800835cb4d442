package curvature

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// DefaultLanczosSteps is the number of steps of a zero-value Lanczos or SLQ
// run (capped at the dimension), the order used for the Hessian spectra of
// Ghorbani, Krishnan & Xiao (2019).
const DefaultLanczosSteps = 80

// Lanczos runs the Lanczos iteration (Golub & Van Loan, §10.1) on a
// symmetric operator A: from a unit start vector q_1 it builds an
// orthonormal basis Q_k = [q_1 … q_k] of the Krylov space
// span{q_1, A q_1, …, A^{k−1} q_1} and the tridiagonal T_k = Q_kᵀ A Q_k,
//
//	β_j q_{j+1} = A q_j − α_j q_j − β_{j−1} q_{j−1},   α_j = q_jᵀ A q_j,
//
// one product per step, with full reorthogonalisation (classical
// Gram–Schmidt, twice) against Q_k, so that rounding does not produce
// spurious copies of converged eigenvalues. The eigenvalues of T_k (the Ritz
// values) approximate the extreme eigenvalues of A first; with k = n they
// are its eigenvalues. Memory: the basis, k·n floats (1.8 GB for the
// benchmark autoencoder's 2.8 M parameters at k = 80).
//
// The zero value is ready to use: DefaultLanczosSteps steps from a
// normalised Rademacher start vector drawn from a fixed seed.
type Lanczos struct {
	// Steps is k ≥ 1, capped at the dimension n; zero means
	// DefaultLanczosSteps.
	Steps int
	// Start is the start vector q_1 (normalised by Run); nil means a
	// Rademacher vector (entries ±1) drawn from Rand.
	Start mat.Vector
	// Rand draws the start vector when Start is nil; nil means a source
	// with a fixed seed.
	Rand *rand.Rand
}

// Ritz is the result of a Lanczos run of k steps: T_k and its
// eigendecomposition T_k = Y diag(θ) Yᵀ.
type Ritz struct {
	// Values are the Ritz values θ_1 ≤ … ≤ θ_k, the eigenvalues of T_k.
	Values []float64
	// Weights are (e_1ᵀ y_j)², the squared first components of T_k's
	// unit eigenvectors, which sum to 1: the nodes θ_j and weights of the
	// Gauss quadrature rule of the start vector's spectral measure,
	// q_1ᵀ f(A) q_1 ≈ Σ_j Weights[j] f(θ_j), exact for polynomials f of
	// degree below 2k (Golub & Meurant 2010).
	Weights []float64
	// Alpha (k) and Beta (k, Beta[k−1] = β_k of the next, unbuilt, basis
	// vector) are the diagonal and off-diagonal of T_k.
	Alpha, Beta []float64

	basis *mat.Dense // k×n, row j = q_{j+1}
	vecs  *mat.Dense // k×k, column j = y_j
}

// Steps returns k, the number of steps taken: fewer than asked when the
// Krylov space became invariant (β_j ≈ 0), in which case the Ritz values are
// eigenvalues of A.
func (r *Ritz) Steps() int { return len(r.Values) }

// Residual returns |β_k (e_kᵀ y_j)| = ‖A x_j − θ_j x_j‖ for the unit Ritz
// vector x_j = Q_k y_j (in exact arithmetic), the error bound of θ_j: A has
// an eigenvalue within Residual(j) of θ_j.
func (r *Ritz) Residual(j int) float64 {
	k := len(r.Values)
	return math.Abs(r.Beta[k-1] * r.vecs.At(k-1, j))
}

// Vector writes the Ritz vector x_j = Q_k y_j (unit norm), the approximate
// eigenvector of Values[j], into dst (resized when empty).
func (r *Ritz) Vector(dst *mat.VecDense, j int) {
	k := len(r.Values)
	if j < 0 || j >= k {
		panic(fmt.Sprintf("curvature: Ritz.Vector: index %d out of range [0,%d)", j, k))
	}
	_, n := r.basis.Dims()
	reuseVec(dst, n, "Ritz.Vector")
	dst.MulVec(r.basis.T(), r.vecs.ColView(j))
}

// ErrLanczosStart is returned by Lanczos.Run for a zero or non-finite start
// vector.
var ErrLanczosStart = errors.New("curvature: Lanczos: start vector is zero or not finite")

// Run runs the iteration on op and returns T_k, its eigendecomposition and
// the basis. It returns an error for a zero or non-finite start vector
// (ErrLanczosStart), a non-finite product, or a failed eigendecomposition of
// T_k.
func (l Lanczos) Run(op LinearOperator) (*Ritz, error) {
	const name = "Lanczos.Run"
	n := checkDim(op, name)
	k := min(countSetting(l.Steps, DefaultLanczosSteps, name, "Steps"), n)
	basis := mat.NewDense(k, n, nil)
	q := basis.RawRowView(0)
	if l.Start != nil {
		if l.Start.Len() != n {
			panic(fmt.Sprintf("curvature: %s: start vector of length %d, operator of dimension %d", name, l.Start.Len(), n))
		}
		for i := range q {
			q[i] = l.Start.AtVec(i)
		}
	} else {
		rademacher(q, orDefaultRand(l.Rand))
	}
	nrm := floats.Norm(q, 2)
	if !(nrm > 0) || math.IsInf(nrm, 0) {
		return nil, ErrLanczosStart
	}
	floats.Scale(1/nrm, q)

	alpha := make([]float64, 0, k)
	beta := make([]float64, 0, k)
	w := mat.NewVecDense(n, nil)
	c := mat.NewVecDense(k, nil)
	tmp := mat.NewVecDense(n, nil)
	anorm := 0.0
	for j := 0; j < k; j++ {
		qj := mat.NewVecDense(n, basis.RawRowView(j))
		if err := mulChecked(op, w, qj, name, j); err != nil {
			return nil, err
		}
		a := mat.Dot(qj, w)
		alpha = append(alpha, a)
		// w ⟂ q_1 … q_{j+1}: the three-term recurrence is the first
		// pass of Gram–Schmidt against the whole basis; a second pass
		// removes what rounding left.
		qs := basis.Slice(0, j+1, 0, n)
		cj := c.SliceVec(0, j+1).(*mat.VecDense)
		for pass := 0; pass < 2; pass++ {
			cj.MulVec(qs, w)
			tmp.MulVec(qs.T(), cj)
			w.SubVec(w, tmp)
		}
		b := mat.Norm(w, 2)
		beta = append(beta, b)
		prev := 0.0
		if j > 0 {
			prev = beta[j-1]
		}
		anorm = math.Max(anorm, math.Sqrt(a*a+b*b+prev*prev))
		if b <= 1e-10*anorm {
			// Invariant subspace: T_{j+1} holds eigenvalues of A.
			beta[j] = 0
			break
		}
		if j+1 < k {
			floats.ScaleTo(basis.RawRowView(j+1), 1/b, w.RawVector().Data)
		}
	}
	m := len(alpha)
	t := mat.NewSymDense(m, nil)
	for j := 0; j < m; j++ {
		t.SetSym(j, j, alpha[j])
		if j+1 < m {
			t.SetSym(j, j+1, beta[j])
		}
	}
	var es mat.EigenSym
	if !es.Factorize(t, true) {
		return nil, fmt.Errorf("curvature: %s: eigendecomposition of the %d×%d tridiagonal matrix failed", name, m, m)
	}
	r := &Ritz{
		Values: es.Values(nil),
		Alpha:  alpha,
		Beta:   beta,
		basis:  basis.Slice(0, m, 0, n).(*mat.Dense),
		vecs:   &mat.Dense{},
	}
	es.VectorsTo(r.vecs)
	r.Weights = make([]float64, m)
	for j := range r.Weights {
		y := r.vecs.At(0, j)
		r.Weights[j] = y * y
	}
	return r, nil
}
