package curvature

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/matutil"
)

// DenseBlock writes into dst the exact Gauss–Newton or Fisher block of one affine
// layer, thesis eq. 3.3.2,
//
//	G_l = (1/n) Σ_i h̃_i h̃_iᵀ ⊗ (J_{a_i}ᵀ D_i J_{a_i}),   h̃_i = (h_i, 1),
//
// a dense P×P matrix with P = n_out·(n_in+1), in the order of
// θ = [vec(W); b] (vec stacking columns). It is built from the record's
// Input (the h_i) and Back, whose rows g_r are backpropagated curvature
// vectors (rows of J_aᵀ D^{1/2}, several per example, or sampled-target
// gradients), tied to examples by the record (row r of Back belongs to
// example e(r) = Layer.BackExample(r)). With s = BackScale (1/n when zero),
//
//	dst = s Σ_r (h̃_{e(r)} h̃_{e(r)}ᵀ) ⊗ (g_r g_rᵀ) = s Σ_r z_r z_rᵀ,   z_r = h̃_{e(r)} ⊗ g_r.
//
// Which matrix this is — exact GN (table
// 3.I), true Fisher (table 3.II), Monte-Carlo or empirical Fisher — depends
// only on what was put in Back (see package curvature/network's Estimator).
//
// An empty dst is resized; otherwise it must be P×P. Cost: O(m P²) for m
// rows of Back, as a blocked rank-k update; memory O(256·P) besides dst.
// Meant for small layers and tests: optimizers use the Kronecker factors.
func DenseBlock(dst *mat.SymDense, l *secondorder.Layer) {
	checkLayer(l, "DenseBlock", true, false, true)
	var z []float64
	outerBlock(dst, l.Input, l.Back, l.BackExample, l.BackScaleOrDefault(), "DenseBlock", &z)
}

// DenseEmpiricalBlock writes into dst the empirical Fisher block of one affine
// layer (thesis §3.1.5, §3.2.3 with observed targets),
//
//	(1/n) Σ_i (h̃_i ⊗ g_i)(h̃_i ⊗ g_i)ᵀ,   g_i = ∇_{a_i} l (row i of Grad),
//
// the mean outer product of the per-example parameter gradients of the
// layer, in the order of θ = [vec(W); b]. It equals Block after Back was
// filled by the FisherEmpirical estimator (package curvature/network). An empty dst is resized;
// otherwise it must be P×P with P = n_out·(n_in+1). Cost: O(n P²).
func DenseEmpiricalBlock(dst *mat.SymDense, l *secondorder.Layer) {
	checkLayer(l, "DenseEmpiricalBlock", true, true, false)
	n, _ := l.Input.Dims()
	var z []float64
	outerBlock(dst, l.Input, l.Grad, func(r int) int { return r }, 1/float64(n), "DenseEmpiricalBlock", &z)
}

// outerBlock writes dst = scale Σ_r z_r z_rᵀ with z_r = h̃_{e(r)} ⊗ g_r,
// processing the rows of g in chunks of 256 with one syrk each: the one
// implementation of eq. 3.3.2 behind DenseBlock, DenseEmpiricalBlock and
// ExactBlock. The rows z_r of a chunk are built in *z, grown when too short
// and otherwise reused, so that a caller keeping *z does not allocate.
func outerBlock(dst *mat.SymDense, input, g *mat.Dense, e func(int) int, scale float64, op string, z *[]float64) {
	_, in := input.Dims()
	m, out := g.Dims()
	p := out * (in + 1)
	reuseSym(dst, p, op)
	d := dst.RawSymmetric()
	if m == 0 {
		dst.Zero()
		return
	}
	const chunk = 256
	zs := growFloats(z, min(chunk, m)*p)
	for r0 := 0; r0 < m; r0 += chunk {
		r1 := min(r0+chunk, m)
		for r := r0; r < r1; r++ {
			zr := zs[(r-r0)*p : (r-r0+1)*p]
			h := matutil.Row(input, e(r))
			gr := matutil.Row(g, r)
			for c, hc := range h {
				seg := zr[c*out : (c+1)*out]
				for o, v := range gr {
					seg[o] = hc * v
				}
			}
			copy(zr[in*out:], gr)
		}
		beta := 1.0
		if r0 == 0 {
			beta = 0
		}
		blas64.Syrk(blas.Trans, scale, blas64.General{Rows: r1 - r0, Cols: p, Stride: p, Data: zs}, beta, d)
	}
}
