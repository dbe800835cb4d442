package kron

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Product writes the Kronecker product A⊗B into dst (thesis §3.3.1): for A of
// size m×n and B of size p×q, dst is the mp×nq matrix whose block (i, j) is
// a_ij B. An empty dst is resized; otherwise it must be mp×nq. dst must not
// share storage with a or b.
//
// Product forms the full matrix, of cost O(mnpq); the other functions of the
// package work from the factors and are meant for anything but tests and
// small problems.
func Product(dst *mat.Dense, a, b mat.Matrix) {
	m, n := a.Dims()
	p, q := b.Dims()
	reuseDense(dst, m*p, n*q, "Product")
	var buf []float64
	bd := contiguous(b, &buf)
	raw := dst.RawMatrix()
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			aij := a.At(i, j)
			for s := 0; s < p; s++ {
				row := raw.Data[(i*p+s)*raw.Stride+j*q : (i*p+s)*raw.Stride+j*q+q]
				brow := bd[s*q : s*q+q]
				for t, v := range brow {
					row[t] = aij * v
				}
			}
		}
	}
}

// MulKron computes the factors of the product of two Kronecker products,
//
//	(A ⊗ B)(C ⊗ D) = AC ⊗ BD,
//
// writing AC into dstA and BD into dstB. It needs cols(A) = rows(C) and
// cols(B) = rows(D), and panics otherwise. Cost: that of the two products.
func MulKron(dstA, dstB *mat.Dense, a, b, c, d mat.Matrix) {
	_, na := a.Dims()
	rc, _ := c.Dims()
	_, nb := b.Dims()
	rd, _ := d.Dims()
	if na != rc || nb != rd {
		panic(fmt.Sprintf("kron: MulKron: cols(A)=%d, rows(C)=%d, cols(B)=%d, rows(D)=%d: want cols(A)=rows(C) and cols(B)=rows(D)", na, rc, nb, rd))
	}
	ma, _ := a.Dims()
	_, nc := c.Dims()
	mb, _ := b.Dims()
	_, nd := d.Dims()
	reuseDense(dstA, ma, nc, "MulKron")
	reuseDense(dstB, mb, nd, "MulKron")
	dstA.Mul(a, c)
	dstB.Mul(b, d)
}
