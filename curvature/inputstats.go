package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/matutil"
)

// Mean writes into dst the mean of the rows of h (n × d),
//
//	μ = (1/n) Σ_i h_i,
//
// the input mean of thesis §3.3.3 (and of the centering of §3.4.1 and the
// natural neural networks of §3.5.2). An empty dst is resized.
func Mean(dst *mat.VecDense, h mat.Matrix) {
	hd := matutil.AsDense(h)
	_, d := hd.Dims()
	reuseVec(dst, d, "Mean")
	columnMeans(dst.RawVector(), hd.RawMatrix())
}

// columnMeans writes the mean of the rows of h into dst (length h.Cols, any
// increment): the one implementation of μ = (1/n) Σ_i h_i, shared by Mean,
// InputFactor (whose last column is μ) and the blocks. It does not allocate.
func columnMeans(dst blas64.Vector, h blas64.General) {
	for c := 0; c < h.Cols; c++ {
		dst.Data[c*dst.Inc] = 0
	}
	for i := 0; i < h.Rows; i++ {
		for c, v := range h.Data[i*h.Stride : i*h.Stride+h.Cols] {
			dst.Data[c*dst.Inc] += v
		}
	}
	inv := 1 / float64(h.Rows)
	for c := 0; c < h.Cols; c++ {
		dst.Data[c*dst.Inc] *= inv
	}
}

// SecondMoment writes into dst the uncentered second moment of the rows of h,
//
//	E[h hᵀ] = (1/n) Σ_i h_i h_iᵀ = (1/n) hᵀ h,
//
// the top-left block of the bias-augmented matrix of thesis §3.3.3 (see
// InputFactor for the whole of it). An empty dst is resized. Cost: one syrk.
func SecondMoment(dst *mat.SymDense, h mat.Matrix) {
	hd := matutil.AsDense(h)
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
	hd := matutil.AsDense(h)
	_, d := hd.Dims()
	m := make([]float64, d)
	if mu == nil {
		columnMeans(blas64.Vector{N: d, Inc: 1, Data: m}, hd.RawMatrix())
	} else {
		if mu.Len() != d {
			panic(fmt.Sprintf("curvature: Covariance: mean has length %d, want %d", mu.Len(), d))
		}
		for c := range m {
			m[c] = mu.AtVec(c)
		}
	}
	reuseSym(dst, d, "Covariance")
	var buf []float64
	covariance(dst.RawSymmetric(), hd.RawMatrix(), m, &buf)
}

// covChunk is the number of rows centered at a time by covariance.
const covChunk = 256

// covariance writes into the upper triangle of dst (d×d) the covariance
// (1/n) Σ_i (h_i − μ)(h_i − μ)ᵀ of the rows of h (n × d) about mu (length
// d): the one implementation behind Covariance and ACPBlock. It centers
// min(n, 256) rows at a time into *buf, grown when too short and otherwise
// reused, and accumulates each chunk with one syrk.
func covariance(dst blas64.Symmetric, h blas64.General, mu []float64, buf *[]float64) {
	n, d := h.Rows, h.Cols
	b := growFloats(buf, min(covChunk, n)*d)
	for r0 := 0; r0 < n; r0 += covChunk {
		r1 := min(r0+covChunk, n)
		for r := r0; r < r1; r++ {
			row := b[(r-r0)*d : (r-r0+1)*d]
			for c, v := range h.Data[r*h.Stride : r*h.Stride+d] {
				row[c] = v - mu[c]
			}
		}
		beta := 1.0
		if r0 == 0 {
			beta = 0
		}
		blas64.Syrk(blas.Trans, 1/float64(n), blas64.General{Rows: r1 - r0, Cols: d, Stride: d, Data: b}, beta, dst)
	}
}

// growFloats returns (*buf)[:n], reallocating *buf only when it is too
// short: the workspaces of the allocation-free internals.
func growFloats(buf *[]float64, n int) []float64 {
	if cap(*buf) < n {
		*buf = make([]float64, n)
	}
	*buf = (*buf)[:n]
	return *buf
}
