package kron

import (
	"fmt"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"gonum.org/v1/gonum/mat"
)

// CholeskyKron applies (A⊗B)⁻¹ = A⁻¹⊗B⁻¹ (thesis §3.3.2) for symmetric
// positive definite factors A (n_A×n_A) and B (n_B×n_B), through their
// Cholesky factorizations. In matrix form,
//
//	(A⊗B)⁻¹ vec(X) = vec(B⁻¹ X A⁻¹),   X of size n_B×n_A,
//
// so for a K-FAC block F ≈ Ā⊗G factorized with (Ā, G), Solve turns the
// gradient ∇Θ into G⁻¹ ∇Θ Ā⁻¹. Factorize costs O(n_A³ + n_B³); each solve
// costs O(n_A n_B (n_A + n_B)), four triangular solves done in place, without
// allocation. The zero value is ready for Factorize.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// (kind "kron.CholeskyKron"): a restored factorization solves bit for
// bit as the saved one.
//
// A CholeskyKron is not safe for concurrent use: Factorize modifies it and
// SolveVec uses its workspace.
type CholeskyKron struct {
	a, b cholFactor
	ok   bool
	vbuf []float64
}

// Factorize computes the Cholesky factorizations of A and B. If a factor is
// not positive definite it returns a *FactorError wrapping
// ErrNotPositiveDefinite and naming the factor, and the receiver must not be
// used for solves until a later Factorize succeeds.
func (k *CholeskyKron) Factorize(a, b mat.Symmetric) error {
	k.ok = false
	k.a.load(a)
	if !k.a.factor() {
		return &FactorError{Factor: "A", Err: ErrNotPositiveDefinite}
	}
	k.b.load(b)
	if !k.b.factor() {
		return &FactorError{Factor: "B", Err: ErrNotPositiveDefinite}
	}
	k.ok = true
	return nil
}

// Dims returns the sizes n_A and n_B of the factors.
func (k *CholeskyKron) Dims() (na, nb int) { return k.a.n, k.b.n }

func (k *CholeskyKron) check(op string) {
	if !k.ok {
		panic("kron: " + op + ": no valid factorization")
	}
}

// Solve writes into dst the matrix form of (A⊗B)⁻¹ vec(X), B⁻¹ X A⁻¹, for X of
// size n_B×n_A. An empty dst is resized; dst may be x.
func (k *CholeskyKron) Solve(dst *mat.Dense, x mat.Matrix) {
	k.check("CholeskyKron.Solve")
	checkDims(x, k.b.n, k.a.n, "CholeskyKron.Solve", "X")
	reuseDense(dst, k.b.n, k.a.n, "CholeskyKron.Solve")
	if x != mat.Matrix(dst) {
		dst.Copy(x)
	}
	raw := dst.RawMatrix()
	k.b.solveLeft(raw)
	k.a.solveRight(raw)
}

// SolveOuter writes into dst the solve B⁻¹ X A⁻¹ of a matrix given as a
// scaled product X = scale · Lᵀ R, with L of size m×n_B and R of size
// m×n_A, computing (L B⁻¹)ᵀ (R A⁻¹): 2m(n_A² + n_B² + n_A n_B) flops
// instead of 2 n_A n_B (n_A + n_B) for Solve on the formed X (both counts
// include forming X), so cheaper when m is below about
// n_A n_B (n_A + n_B)/(n_A² + n_B² + n_A n_B). For a K-FAC block the
// gradient [∇W ∇b] is (1/n) Gradᵀ [H 1], so with L = Grad and R = [H 1]
// the update costs a multiple of the batch size n rather than of the layer
// size (see UseOuter). L and R are overwritten with L B⁻¹ and R A⁻¹.
func (k *CholeskyKron) SolveOuter(dst *mat.Dense, scale float64, l, r *mat.Dense) {
	k.check("CholeskyKron.SolveOuter")
	ml, cl := l.Dims()
	mr, cr := r.Dims()
	if ml != mr || cl != k.b.n || cr != k.a.n {
		panic(fmt.Sprintf("kron: CholeskyKron.SolveOuter: L is %d×%d and R is %d×%d, want m×%d and m×%d", ml, cl, mr, cr, k.b.n, k.a.n))
	}
	reuseDense(dst, k.b.n, k.a.n, "CholeskyKron.SolveOuter")
	k.b.solveRight(l.RawMatrix())
	k.a.solveRight(r.RawMatrix())
	// dst = scale·lᵀ r by one gemm: no boxed transpose, no second pass.
	blas64.Gemm(blas.Trans, blas.NoTrans, scale, l.RawMatrix(), r.RawMatrix(), 0, dst.RawMatrix())
}

// UseOuter reports whether SolveOuter with m rows takes fewer flops than
// Solve on the formed n_B×n_A matrix, for the sizes of this factorization.
func (k *CholeskyKron) UseOuter(m int) bool {
	na, nb := k.a.n, k.b.n
	return m*(na*na+nb*nb+na*nb) < na*nb*(na+nb)
}

// SolveVec writes (A⊗B)⁻¹ v into dst, for v of length n_A n_B. It works on
// the storage of the vec, read as the n_A×n_B matrix Xᵀ:
// unvec(dst)ᵀ = A⁻¹ Xᵀ B⁻¹. An empty dst is resized; dst may be v.
func (k *CholeskyKron) SolveVec(dst *mat.VecDense, v mat.Vector) {
	k.check("CholeskyKron.SolveVec")
	na, nb := k.a.n, k.b.n
	checkLen(v, na*nb, "CholeskyKron.SolveVec", "v")
	reuseVec(dst, na*nb, "CholeskyKron.SolveVec")
	solveVecInPlace(dst, v, &k.vbuf, func(xt []float64) {
		g := general(na, nb, xt)
		k.a.solveLeft(g)
		k.b.solveRight(g)
	})
}

// LogDet returns log det(A⊗B) = n_B log det A + n_A log det B, from the
// Cholesky factors, at cost O(n_A + n_B).
func (k *CholeskyKron) LogDet() float64 {
	k.check("CholeskyKron.LogDet")
	return float64(k.b.n)*k.a.logDet() + float64(k.a.n)*k.b.logDet()
}

// solveVecInPlace copies v into dst and applies f to the contiguous storage
// of dst, through a temporary when dst is strided.
func solveVecInPlace(dst *mat.VecDense, v mat.Vector, buf *[]float64, f func([]float64)) {
	if v != mat.Vector(dst) {
		dst.CopyVec(v)
	}
	raw := dst.RawVector()
	if raw.Inc == 1 {
		f(raw.Data[:dst.Len()])
		return
	}
	d := grow(buf, dst.Len())
	for i := range d {
		d[i] = dst.AtVec(i)
	}
	f(d)
	for i, x := range d {
		dst.SetVec(i, x)
	}
}
