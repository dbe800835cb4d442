package kron

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// MulMat computes the matrix form of (A⊗B) vec(X) without forming A⊗B,
//
//	(A ⊗ B) vec(X) = vec(B X Aᵀ)           (thesis §3.3.1, vec(AXB) = (Bᵀ⊗A) vec(X)),
//
// writing B X Aᵀ into dst. For A of size m×n and B of size p×q, X must be q×n
// and dst is p×m; the factors need not be square. For a layer's K-FAC block
// F ≈ Ā⊗G and an update ΔΘ = [ΔW Δb], MulMat(dst, Ā, G, ΔΘ) gives G ΔΘ Ā,
// the matrix form of F vec(ΔΘ).
//
// The two products are done in the cheaper order: cost
// O(min(pqn + pnm, qnm + pqm)) against O(mnpq) through the dense product.
// MulMat allocates a temporary of size p×n or q×m. dst may be x.
func MulMat(dst *mat.Dense, a, b, x mat.Matrix) {
	m, n := a.Dims()
	p, q := b.Dims()
	checkDims(x, q, n, "MulMat", "X")
	reuseDense(dst, p, m, "MulMat")
	if p*q*n+p*n*m <= q*n*m+p*q*m {
		var w mat.Dense
		w.Mul(b, x) // p×n
		dst.Mul(&w, a.T())
	} else {
		var w mat.Dense
		w.Mul(x, a.T()) // q×m
		dst.Mul(b, &w)
	}
}

// MulVec computes dst = (A⊗B) x without forming A⊗B. For A of size m×n and B
// of size p×q, x must have length nq and dst has length mp. It is MulMat on
// the matrix forms, using that the column-major vec of a matrix is the
// row-major storage of its transpose: (A⊗B) vec(X) = vec(B X Aᵀ), so
// unvec(dst)ᵀ = A Xᵀ Bᵀ with Xᵀ read in place from x. Cost as MulMat.
// dst must not share storage with a, b or x.
func MulVec(dst *mat.VecDense, a, b mat.Matrix, x mat.Vector) {
	m, n := a.Dims()
	p, q := b.Dims()
	checkLen(x, n*q, "MulVec", "x")
	reuseVec(dst, m*p, "MulVec")
	var xbuf, dbuf, work []float64
	xd := contiguousVec(x, &xbuf)
	raw := dst.RawVector()
	dd := raw.Data
	if raw.Inc != 1 {
		dd = grow(&dbuf, m*p)
	} else {
		dd = dd[:m*p]
	}
	mulCols(dd, a, b, xd, 1, &work)
	if raw.Inc != 1 {
		for i, v := range dd {
			dst.SetVec(i, v)
		}
	}
}

// MulCols computes dst = (A⊗B) X without forming A⊗B, for X whose k columns
// are vecs: for A of size m×n and B of size p×q, X is nq×k and dst is mp×k.
// Column j of dst is (A⊗B) vec(X_j) = vec(B X_j Aᵀ).
//
// The k columns are processed together, with one product by A and m (or n)
// products by B on blocks of the row-major storage of X: cost
// O(k · min(mq(n+p), np(q+m))), with a temporary of size mqk or npk.
// dst must not share storage with a, b or x.
func MulCols(dst *mat.Dense, a, b, x mat.Matrix) {
	m, n := a.Dims()
	p, q := b.Dims()
	xr, k := x.Dims()
	if xr != n*q {
		panic(fmt.Sprintf("kron: MulCols: X has %d rows, want %d", xr, n*q))
	}
	reuseDense(dst, m*p, k, "MulCols")
	var xbuf, dbuf, work []float64
	xd := contiguous(x, &xbuf)
	raw := dst.RawMatrix()
	contig := raw.Stride == k
	var dd []float64
	if contig {
		dd = raw.Data[:m*p*k]
	} else {
		dd = grow(&dbuf, m*p*k)
	}
	mulCols(dd, a, b, xd, k, &work)
	if !contig {
		dst.Copy(mat.NewDense(m*p, k, dd))
	}
}

// mulCols writes into dst (mp×k, row-major, contiguous) the product
// (A⊗B) X for X (nq×k, row-major, contiguous).
//
// Row c·q+r of X holds X_j[r, c] for all j, so the storage of X read as an
// n×(qk) matrix X1 has X1[c, r·k+j] = X_j[r, c]; likewise the storage of dst
// read as m×(pk) has entry (i, s·k+j) = Y_j[s, i] with Y_j = B X_j Aᵀ.
// Either T = A X1 (m×qk) followed by B times each q×k block of T, or B times
// each q×k block of X1 (giving n×pk) followed by A times the result.
func mulCols(dst []float64, a, b mat.Matrix, x []float64, k int, work *[]float64) {
	m, n := a.Dims()
	p, q := b.Dims()
	ag := asGeneral(a)
	bg := asGeneral(b)
	if m*q*(n+p) <= n*p*(q+m) {
		t := grow(work, m*q*k)
		gemm(1, ag, general(n, q*k, x), 0, general(m, q*k, t))
		for i := 0; i < m; i++ {
			gemm(1, bg, general(q, k, t[i*q*k:(i+1)*q*k]), 0, general(p, k, dst[i*p*k:(i+1)*p*k]))
		}
		return
	}
	u := grow(work, n*p*k)
	for c := 0; c < n; c++ {
		gemm(1, bg, general(q, k, x[c*q*k:(c+1)*q*k]), 0, general(p, k, u[c*p*k:(c+1)*p*k]))
	}
	gemm(1, ag, general(n, p*k, u), 0, general(m, p*k, dst))
}

// transGeneral is a general matrix that may be used transposed.
type transGeneral struct {
	g blas64.General
	t blas.Transpose
}

// asGeneral returns a BLAS view of m, without copying when m is a *mat.Dense
// or the transpose of one.
func asGeneral(m mat.Matrix) transGeneral {
	switch v := m.(type) {
	case *mat.Dense:
		return transGeneral{v.RawMatrix(), blas.NoTrans}
	case mat.Transpose:
		if d, ok := v.Matrix.(*mat.Dense); ok {
			return transGeneral{d.RawMatrix(), blas.Trans}
		}
	}
	return transGeneral{mat.DenseCopyOf(m).RawMatrix(), blas.NoTrans}
}

// gemm computes c = alpha op(a) b + beta c.
func gemm(alpha float64, a transGeneral, b blas64.General, beta float64, c blas64.General) {
	blas64.Gemm(a.t, blas.NoTrans, alpha, a.g, b, beta, c)
}
