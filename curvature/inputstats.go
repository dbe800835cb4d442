package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Mean writes into dst the mean of the rows of h (n × d),
//
//	μ = (1/n) Σ_i h_i,
//
// the input mean of thesis §3.3.3 (and of the centering of §3.4.1 and the
// natural neural networks of §3.5.2). An empty dst is resized.
func Mean(dst *mat.VecDense, h mat.Matrix) {
	hd := asDense(h)
	n, d := hd.Dims()
	reuseVec(dst, d, "Mean")
	sum := make([]float64, d)
	for i := 0; i < n; i++ {
		for c, v := range rowOf(hd, i) {
			sum[c] += v
		}
	}
	for c, v := range sum {
		dst.SetVec(c, v/float64(n))
	}
}

// SecondMoment writes into dst the uncentered second moment of the rows of h,
//
//	E[h hᵀ] = (1/n) Σ_i h_i h_iᵀ = (1/n) hᵀ h,
//
// the top-left block of the bias-augmented matrix of thesis §3.3.3 (see
// InputFactor for the whole of it). An empty dst is resized. Cost: one syrk.
func SecondMoment(dst *mat.SymDense, h mat.Matrix) {
	hd := asDense(h)
	n, d := hd.Dims()
	reuseSym(dst, d, "SecondMoment")
	blas64.Syrk(blas.Trans, 1/float64(n), hd.RawMatrix(), 0, dst.RawSymmetric())
}

// Covariance writes into dst the covariance of the rows of h with the 1/n
// normalisation of thesis §3.3.3 (not the unbiased 1/(n−1)),
//
//	C = (1/n) Σ_i (h_i − μ)(h_i − μ)ᵀ = E[h hᵀ] − μ μᵀ,
//
// given the mean mu, or computing it when mu is nil. It centers the rows
// before the product (in chunks of 256 rows), so it does not lose precision
// when |μ| is large against the spread. An empty dst is resized.
func Covariance(dst *mat.SymDense, h mat.Matrix, mu mat.Vector) {
	hd := asDense(h)
	n, d := hd.Dims()
	if mu == nil {
		var m mat.VecDense
		Mean(&m, hd)
		mu = &m
	} else if mu.Len() != d {
		panic(fmt.Sprintf("curvature: Covariance: mean has length %d, want %d", mu.Len(), d))
	}
	reuseSym(dst, d, "Covariance")
	m := make([]float64, d)
	for c := range m {
		m[c] = mu.AtVec(c)
	}
	const chunk = 256
	rows := min(chunk, n)
	buf := make([]float64, rows*d)
	for r0 := 0; r0 < n; r0 += chunk {
		r1 := min(r0+chunk, n)
		for r := r0; r < r1; r++ {
			b := buf[(r-r0)*d : (r-r0+1)*d]
			for c, v := range rowOf(hd, r) {
				b[c] = v - m[c]
			}
		}
		beta := 1.0
		if r0 == 0 {
			beta = 0
		}
		blas64.Syrk(blas.Trans, 1/float64(n), blas64.General{Rows: r1 - r0, Cols: d, Stride: d, Data: buf}, beta, dst.RawSymmetric())
	}
}
