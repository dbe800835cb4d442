package curvature

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/matutil"
	"github.com/secondorder/secondorder/kron"
)

// InputFactor writes into dst the input-side K-FAC factor of a layer whose
// inputs are the rows of h (n × n_in), the bias-augmented second moment
// (thesis §3.3.3 and §3.5.1; Martens & Grosse 2015, §3 and appendix A)
//
//	Ā = (1/n) Σ_i h̃_i h̃_iᵀ = [ E[h hᵀ]  E[h] ]     h̃ = (h, 1),
//	                          [ E[h]ᵀ   1    ],
//
// of size (n_in+1)×(n_in+1). For a record pass its Input, or a sub-batch of
// it (Martens & Grosse's τ1). An empty dst is resized; otherwise it must be
// (n_in+1)². Cost: one n × n_in syrk.
func InputFactor(dst *mat.SymDense, h mat.Matrix) {
	hd := matutil.AsDense(h)
	_, in := hd.Dims()
	reuseSym(dst, in+1, "InputFactor")
	inputFactor(dst, hd.RawMatrix())
}

// inputFactor writes Ā of the rows of h into dst, already (h.Cols+1)²: the
// one implementation behind InputFactor and KFACBlock (which passes the
// leading BackCover rows). One syrk for E[h hᵀ], columnMeans for E[h] into
// the last column; no allocation.
func inputFactor(dst *mat.SymDense, h blas64.General) {
	in := h.Cols
	blas64.Syrk(blas.Trans, 1/float64(h.Rows), h, 0, upper(dst, in))
	raw := dst.RawSymmetric()
	columnMeans(blas64.Vector{N: in, Inc: raw.Stride, Data: raw.Data[in:]}, h)
	raw.Data[in*raw.Stride+in] = 1
}

// OutputFactor writes into dst the output-side K-FAC factor of a layer
// (thesis §3.5.1; Martens & Grosse 2015, §3),
//
//	G = E[g gᵀ] = s Backᵀ Back = s Σ_r g_r g_rᵀ,   s = BackScale (1/n when zero),
//
// of size n_out×n_out, from the backpropagated vectors in the record's Back.
// With Back from the GGNExact or FisherExact estimators G is
// (1/n) Σ_i J_{a_i}ᵀ D_i J_{a_i}; with FisherGradients it is its
// Monte-Carlo estimate. An empty dst is resized. Cost: one m × n_out syrk.
func OutputFactor(dst *mat.SymDense, l *secondorder.Layer) {
	checkLayer(l, "OutputFactor", false, false, true)
	out, _ := l.Dims()
	reuseSym(dst, out, "OutputFactor")
	blas64.Syrk(blas.Trans, l.BackScaleOrDefault(), l.Back.RawMatrix(), 0, dst.RawSymmetric())
}

// EmpiricalOutputFactor writes into dst the output-side factor of the
// empirical Fisher, G = (1/n) Σ_i g_i g_iᵀ with g_i = ∇_{a_i} l the rows of
// the record's Grad (observed targets). An empty dst is resized.
func EmpiricalOutputFactor(dst *mat.SymDense, l *secondorder.Layer) {
	checkLayer(l, "EmpiricalOutputFactor", false, true, false)
	out, _ := l.Dims()
	n, _ := l.Grad.Dims()
	reuseSym(dst, out, "EmpiricalOutputFactor")
	blas64.Syrk(blas.Trans, 1/float64(n), l.Grad.RawMatrix(), 0, dst.RawSymmetric())
}

// DenseKFAC writes into dst the dense K-FAC approximation of a layer's
// curvature block (thesis §3.5.1; Martens & Grosse 2015, eq. 1),
//
//	F ≈ Ā ⊗ G,
//
// in the order of θ = [vec(W); b], so that it can be compared with DenseBlock.
// a is Ā ((n_in+1)²) and g is G (n_out²). An empty dst is resized. It forms
// the full matrix, O(n_in² n_out²): for tests and small layers.
func DenseKFAC(dst *mat.SymDense, a, g mat.Symmetric) {
	if a == nil || g == nil {
		panic("curvature: DenseKFAC: nil factor")
	}
	p := a.SymmetricDim() * g.SymmetricDim()
	reuseSym(dst, p, "DenseKFAC")
	var full mat.Dense
	kron.Product(&full, a, g)
	symFromDense(dst, &full, "DenseKFAC")
}
