package kron

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/lapack64"
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
	// Transposed views, made once: boxing q.T() in a mat.Matrix at every
	// solve would allocate.
	qaT, qbT mat.Matrix
	la, lb   []float64
	ok       bool
	// wm (n_B×n_A) and wv (n_A×n_B) share their storage.
	wm, wv mat.Dense
	vbuf   []float64
	work   []float64 // LAPACK workspace
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
	if e.la, err = eigenTo(&e.qa, e.la, &e.work, a, "A"); err != nil {
		return err
	}
	if e.lb, err = eigenTo(&e.qb, e.lb, &e.work, b, "B"); err != nil {
		return err
	}
	e.setWork()
	e.ok = true
	return nil
}

// setWork makes the workspace and the transposed views of the bases,
// reusing the workspace when its size is unchanged.
func (e *EigenKron) setWork() {
	na, nb := len(e.la), len(e.lb)
	if r, c := e.wm.Dims(); e.wm.IsEmpty() || r != nb || c != na {
		w := make([]float64, na*nb)
		e.wm.SetRawMatrix(general(nb, na, w))
		e.wv.SetRawMatrix(general(na, nb, w))
	}
	if e.qaT == nil {
		e.qaT, e.qbT = e.qa.T(), e.qb.T()
	}
}

func eigenTo(q *mat.Dense, vals []float64, work *[]float64, a mat.Symmetric, name string) ([]float64, error) {
	n := a.SymmetricDim()
	if r, c := q.Dims(); q.IsEmpty() || r != n || c != n {
		q.Reset()
		q.ReuseAs(n, n)
	}
	// The upper triangle of a, in place of its eigenvectors (LAPACK's
	// dsyev, through lapack64 and so the backend's, with the workspace
	// kept: mat.EigenSym allocates at every call).
	raw := q.RawMatrix()
	if s, ok := a.(mat.RawSymmetricer); ok && s.RawSymmetric().Uplo == blas.Upper {
		sr := s.RawSymmetric()
		for i := 0; i < n; i++ {
			copy(raw.Data[i*raw.Stride+i:i*raw.Stride+n], sr.Data[i*sr.Stride+i:i*sr.Stride+n])
		}
	} else {
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				raw.Data[i*raw.Stride+j] = a.At(i, j)
			}
		}
	}
	if cap(vals) < n {
		vals = make([]float64, n)
	}
	vals = vals[:n]
	sym := blas64.Symmetric{N: n, Stride: raw.Stride, Data: raw.Data, Uplo: blas.Upper}
	if cap(*work) < 1 {
		*work = make([]float64, 1)
	}
	lapack64.Syev(lapack.EVCompute, sym, vals, (*work)[:1], -1)
	lwork := int((*work)[0])
	if cap(*work) < lwork {
		*work = make([]float64, lwork)
	}
	if !lapack64.Syev(lapack.EVCompute, sym, vals, (*work)[:lwork], lwork) {
		return vals, &FactorError{Factor: name, Err: ErrNoConvergence}
	}
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
	eigenSolve(dst, x, &e.wm, &e.qb, &e.qa, e.qbT, e.qaT, e.lb, e.la, lambda)
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
		eigenSolve(m, m, &e.wv, &e.qa, &e.qb, e.qaT, e.qbT, e.la, e.lb, lambda)
	})
	return nil
}

// eigenSolve writes into dst (n1×n2) Q1 ((Q1ᵀ X Q2) ./ (l1 l2ᵀ + λ)) Q2ᵀ,
// using w (n1×n2) as workspace. dst may be x.
func eigenSolve(dst *mat.Dense, x mat.Matrix, w, q1, q2 *mat.Dense, q1T, q2T mat.Matrix, l1, l2 []float64, lambda float64) {
	eigenApply(dst, x, w, q1, q2, q1T, q2T, func(i int, row []float64) {
		li := l1[i]
		for j, lj := range l2 {
			row[j] /= li*lj + lambda
		}
	})
}

// eigenApply writes into dst (n1×n2) Q1 f(Q1ᵀ X Q2) Q2ᵀ, where f changes
// the rows of the rotated matrix in place, using w (n1×n2) as workspace:
// the one form of every operation in the eigenbasis of a Kronecker
// product; q1T and q2T are the transposes of q1 and q2. dst may be x.
func eigenApply(dst *mat.Dense, x mat.Matrix, w, q1, q2 *mat.Dense, q1T, q2T mat.Matrix, f func(i int, row []float64)) {
	w.Mul(q1T, x)
	dst.Mul(w, q2)
	raw := dst.RawMatrix()
	for i := 0; i < raw.Rows; i++ {
		f(i, raw.Data[i*raw.Stride:i*raw.Stride+raw.Cols])
	}
	w.Mul(dst, q2T)
	dst.Mul(q1, w)
}

// Bases returns the eigenvectors Q_A (n_A×n_A) and Q_B (n_B×n_B) as
// columns, in the order of Values. They are the receiver's and must not be
// modified.
func (e *EigenKron) Bases() (qa, qb *mat.Dense) {
	if !e.ok {
		panic("kron: EigenKron.Bases: no valid factorization")
	}
	return &e.qa, &e.qb
}

// SolveScaled writes into dst the solve with the matrix that keeps the
// eigenbasis of A⊗B and replaces its eigenvalues λ_B λ_Aᵀ by the n_B×n_A
// matrix S (George et al. 2018's eigenvalue-corrected K-FAC):
//
//	Y = Q_B ((Q_Bᵀ X Q_A) ./ (S + λ)) Q_Aᵀ,   for (Q_A⊗Q_B) diag(vec S + λ) (Q_A⊗Q_B)ᵀ.
//
// With S = λ_B λ_Aᵀ it is Solve. An empty dst is resized; dst may be x. It
// panics if λ is negative or S has the wrong shape, and returns a
// *FactorError wrapping ErrSingular, leaving dst unchanged, if an entry of
// S + λ is not positive. Cost: four matrix products, 2 n_A n_B (n_A + n_B)
// flops each pair.
func (e *EigenKron) SolveScaled(dst *mat.Dense, x mat.Matrix, s *mat.Dense, lambda float64) error {
	const op = "EigenKron.SolveScaled"
	if err := e.checkScaled(x, s, lambda, op, "X"); err != nil {
		return err
	}
	na, nb := e.Dims()
	reuseDense(dst, nb, na, op)
	sr := s.RawMatrix()
	eigenApply(dst, x, &e.wm, &e.qb, &e.qa, e.qbT, e.qaT, func(i int, row []float64) {
		for j, v := range sr.Data[i*sr.Stride : i*sr.Stride+na] {
			row[j] /= v + lambda
		}
	})
	return nil
}

// checkScaled panics unless a factorization is held and x and s are
// n_B×n_A and λ ≥ 0, and returns a *FactorError wrapping ErrSingular when
// an entry of S + λ is not positive.
func (e *EigenKron) checkScaled(x mat.Matrix, s *mat.Dense, lambda float64, op, name string) error {
	if !e.ok {
		panic("kron: " + op + ": no valid factorization")
	}
	checkDamping(lambda, op)
	na, nb := e.Dims()
	checkDims(x, nb, na, op, name)
	checkDims(s, nb, na, op, "S")
	sr := s.RawMatrix()
	for i := 0; i < nb; i++ {
		for _, v := range sr.Data[i*sr.Stride : i*sr.Stride+na] {
			if !(v+lambda > 0) {
				return &FactorError{Factor: "S", Err: ErrSingular}
			}
		}
	}
	return nil
}

// ScaleRotated finishes SolveScaled from the rotated Z = Q_Bᵀ X Q_A: it
// writes Q_B (Z ./ (S + λ)) Q_Aᵀ into dst, so that a caller who has Z
// cheaper (from a low-rank X, say) saves the first two products. Shapes,
// errors and aliasing are those of SolveScaled, with z in place of x.
func (e *EigenKron) ScaleRotated(dst *mat.Dense, z mat.Matrix, s *mat.Dense, lambda float64) error {
	const op = "EigenKron.ScaleRotated"
	if err := e.checkScaled(z, s, lambda, op, "Z"); err != nil {
		return err
	}
	na, nb := e.Dims()
	reuseDense(dst, nb, na, op)
	if dst != z {
		dst.Copy(z)
	}
	raw, sr := dst.RawMatrix(), s.RawMatrix()
	for i := 0; i < nb; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+na]
		for j, v := range sr.Data[i*sr.Stride : i*sr.Stride+na] {
			row[j] /= v + lambda
		}
	}
	e.RotateBack(dst, dst)
	return nil
}

// MulScaled writes into dst Q_B ((Q_Bᵀ X Q_A) .* S) Q_Aᵀ, the product with
// (Q_A⊗Q_B) diag(vec S) (Q_A⊗Q_B)ᵀ; with S = λ_B λ_Aᵀ it is (A⊗B) vec(X). An
// empty dst is resized; dst may be x.
func (e *EigenKron) MulScaled(dst *mat.Dense, x mat.Matrix, s *mat.Dense) {
	const op = "EigenKron.MulScaled"
	if !e.ok {
		panic("kron: " + op + ": no valid factorization")
	}
	na, nb := e.Dims()
	checkDims(x, nb, na, op, "X")
	checkDims(s, nb, na, op, "S")
	reuseDense(dst, nb, na, op)
	sr := s.RawMatrix()
	eigenApply(dst, x, &e.wm, &e.qb, &e.qa, e.qbT, e.qaT, func(i int, row []float64) {
		for j, v := range sr.Data[i*sr.Stride : i*sr.Stride+na] {
			row[j] *= v
		}
	})
}

// singular reports whether the sorted nonnegative eigenvalues vals have
// their smallest at most n·ε times their largest.
func singular(vals []float64) bool {
	return vals[0] <= float64(len(vals))*eps*vals[len(vals)-1]
}

// Rotate writes into dst the coordinates of X (n_B×n_A) in the eigenbasis,
// Q_Bᵀ X Q_A, using the workspace; RotateBack undoes it. An empty dst is
// resized; dst may be x.
func (e *EigenKron) Rotate(dst *mat.Dense, x mat.Matrix) {
	const op = "EigenKron.Rotate"
	if !e.ok {
		panic("kron: " + op + ": no valid factorization")
	}
	na, nb := e.Dims()
	checkDims(x, nb, na, op, "X")
	reuseDense(dst, nb, na, op)
	e.wm.Mul(e.qbT, x)
	dst.Mul(&e.wm, &e.qa)
}

// RotateBack writes into dst Q_B X Q_Aᵀ, the matrix whose coordinates in the
// eigenbasis are X (n_B×n_A). An empty dst is resized; dst may be x.
func (e *EigenKron) RotateBack(dst *mat.Dense, x mat.Matrix) {
	const op = "EigenKron.RotateBack"
	if !e.ok {
		panic("kron: " + op + ": no valid factorization")
	}
	na, nb := e.Dims()
	checkDims(x, nb, na, op, "X")
	reuseDense(dst, nb, na, op)
	e.wm.Mul(x, e.qaT)
	dst.Mul(&e.qb, &e.wm)
}
