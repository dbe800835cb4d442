package optim

import (
	"fmt"

	"github.com/secondorder/secondorder"
	"gonum.org/v1/gonum/mat"
)

var _ Optimizer = (*Centered)(nil)

// Centered is centered gradient descent (thesis §3.4.1, algorithm 2): the
// weight update uses the inputs centered on their minibatch mean,
//
//	ΔW = (1/n) Σ_i ∇_{a_i} l (h_i − h̄)ᵀ,   h̄ = (1/n) Σ_j h_j,
//	Δb = (1/n) Σ_i ∇_{a_i} l,
//	W ← W − η ΔW,   b ← b − η Δb,
//
// descending (algorithm 2 writes W ← W + λ…, the thesis's slip 3; its λ is
// the learning rate η here). ΔW is the weight part of eq. 3.3.3 without the
// C⁻¹ and the 1/α. It optionally adds momentum, classical or Nesterov, in
// the same form as SGD so that the two compare fairly (see SGD):
//
//	v ← μ v − η Δ,   θ ← θ + v              (classical)
//	v ← μ v − η Δ,   θ ← θ + μ v − η Δ      (Nesterov)
//
// Extra parameters of the layers (batch normalisation's γ and β) get the
// same update as b, from their gradients.
//
// Computation. Since (1/n) Σ_i ∇_{a_i} l h_iᵀ = ∇_W R and
// (1/n) Σ_i ∇_{a_i} l = ∇_b R,
//
//	ΔW = GradW − GradB h̄ᵀ,
//
// a rank-one correction of the record's GradW: Step computes the column
// means h̄ of Input (O(n n_in)) and applies W ← W − η (GradW − GradB h̄ᵀ) in
// one fused pass (O(n_out n_in)), instead of a second n×n_in×n_out product
// of Grad with a centered copy of Input. The two agree to rounding
// (|error| ≲ ε_mach |GradB| |h̄| per entry), well below the size of any
// useful step. It reads Input, GradW and GradB (not Grad), and allocates
// nothing after the first step. The zero value is learning rate 0.01
// without momentum, like SGD's.
type Centered struct {
	// Rate is the learning rate η; zero means 0.01, SGD's default. Negative
	// is refused.
	Rate float64
	// Momentum is μ in [0, 1); zero means no momentum.
	Momentum float64
	// Nesterov selects Nesterov momentum instead of classical momentum.
	Nesterov bool

	shape []elemShape
	mean  [][]float64 // column means of each layer's Input
	vw    []*mat.Dense
	vb    []*mat.VecDense
	ve    [][]*mat.VecDense
}

// Step applies one update to every layer from its Input, GradW and GradB.
func (c *Centered) Step(layers []*secondorder.Layer) error {
	checkLayers("Centered", layers)
	checkRate("Centered", "learning rate", c.Rate)
	checkUnit("Centered", "momentum", c.Momentum)
	eta, mu := c.Rate, c.Momentum
	if eta == 0 {
		eta = 0.01
	}
	for k, l := range layers {
		if l.Input == nil {
			panic(fmt.Sprintf("optim: Centered: layer %d has no Input", k))
		}
	}
	c.ensureState(layers, mu > 0)
	for k, l := range layers {
		hbar := c.mean[k]
		columnMeans(hbar, l.Input)
		w, gw := l.W.RawMatrix(), l.GradW.RawMatrix()
		gb := l.GradB.RawVector()
		var vw []float64
		vs := 0
		if mu > 0 {
			raw := c.vw[k].RawMatrix()
			vw, vs = raw.Data, raw.Stride
		}
		for i := 0; i < w.Rows; i++ {
			wr := w.Data[i*w.Stride : i*w.Stride+w.Cols]
			gr := gw.Data[i*gw.Stride : i*gw.Stride+w.Cols]
			bi := gb.Data[i*gb.Inc]
			if mu == 0 {
				centeredRow(wr, gr, hbar, bi, eta)
			} else {
				centeredMomentumRow(wr, vw[i*vs:i*vs+w.Cols], gr, hbar, bi, eta, mu, c.Nesterov)
			}
		}
		if mu == 0 {
			axpyVec(l.B, -eta, l.GradB)
			for _, p := range l.Extra {
				axpyVec(p.Value, -eta, p.Grad)
			}
			continue
		}
		momentumStepVec(l.B.RawVector(), c.vb[k].RawVector(), l.GradB.RawVector(), eta, mu, c.Nesterov)
		for j, p := range l.Extra {
			momentumStepVec(p.Value.RawVector(), c.ve[k][j].RawVector(), p.Grad.RawVector(), eta, mu, c.Nesterov)
		}
	}
	return nil
}

// centeredRow sets w ← w − η (g − b h̄) for one row of W.
func centeredRow(w, g, hbar []float64, b, eta float64) {
	g, hbar = g[:len(w)], hbar[:len(w)]
	for j := range w {
		w[j] -= eta * (g[j] - b*hbar[j])
	}
}

// centeredMomentumRow is centeredRow with momentum: d = g − b h̄,
// v ← μv − ηd, then w ← w + v (classical) or w ← w + μv − ηd (Nesterov).
func centeredMomentumRow(w, v, g, hbar []float64, b, eta, mu float64, nesterov bool) {
	v, g, hbar = v[:len(w)], g[:len(w)], hbar[:len(w)]
	for j := range w {
		d := g[j] - b*hbar[j]
		vj := mu*v[j] - eta*d
		v[j] = vj
		if nesterov {
			w[j] += mu*vj - eta*d
		} else {
			w[j] += vj
		}
	}
}

// columnMeans writes the means of the columns of h into dst (length = the
// number of columns of h) without allocating.
func columnMeans(dst []float64, h *mat.Dense) {
	raw := h.RawMatrix()
	dst = dst[:raw.Cols]
	clear(dst)
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
		for j, v := range row {
			dst[j] += v
		}
	}
	inv := 1 / float64(raw.Rows)
	for j := range dst {
		dst[j] *= inv
	}
}

func (c *Centered) ensureState(layers []*secondorder.Layer, momentum bool) {
	if len(c.shape) == 0 {
		for _, l := range layers {
			_, in := l.W.Dims()
			c.shape = append(c.shape, elemShapeOf(l))
			c.mean = append(c.mean, make([]float64, in))
		}
		c.vw = make([]*mat.Dense, len(layers))
		c.vb = make([]*mat.VecDense, len(layers))
		c.ve = make([][]*mat.VecDense, len(layers))
	}
	if len(layers) != len(c.shape) {
		panic(fmt.Sprintf("optim: Centered: got %d layers, earlier steps had %d", len(layers), len(c.shape)))
	}
	for k, l := range layers {
		if !c.shape[k].matches(l) {
			panic(fmt.Sprintf("optim: Centered: layer %d changed shape (W, B or Extra) between steps", k))
		}
		if momentum && c.vw[k] == nil {
			out, in := l.W.Dims()
			c.vw[k] = mat.NewDense(out, in, nil)
			c.vb[k] = mat.NewVecDense(out, nil)
			for _, p := range l.Extra {
				c.ve[k] = append(c.ve[k], mat.NewVecDense(p.Value.Len(), nil))
			}
		}
	}
}
