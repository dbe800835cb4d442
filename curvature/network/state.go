package network

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/nn"
)

// netState is a copy of what the network-level curvature computations need
// from a network at a batch: weights, activations, the forward pass and,
// when asked, the backward pass. It does not alias the network.
type netState struct {
	n, k  int
	lay   secondorder.Layout // the layers' parameter layout
	off   []int              // lay.Offsets
	w     []*mat.Dense       // W_l, n_out × n_in
	acts  []nn.Activation
	h     []*mat.Dense // inputs h_l, n × n_in
	a     []*mat.Dense // pre-activations a_l, n × n_out
	f     []*mat.Dense // outputs φ(a_l), n × n_out
	grad  []*mat.Dense // ∇_{a_l} l per example (nil without targets)
	gradF *mat.Dense   // ∇_f l at the output (nil without targets)
	y     *mat.Dense   // targets, or the outputs as placeholders
	loss  nn.Loss
}

// snapshot runs net.Forward(X) and, when Y is not nil, net.Backward(loss, Y),
// and copies the state.
func snapshot(net *nn.Network, loss nn.Loss, X, Y mat.Matrix, op string) *netState {
	if net == nil || loss == nil {
		panic(fmt.Sprintf("network: %s: nil network or loss", op))
	}
	if !net.Plain() {
		// The R-operator and second-order passes below rebuild the network
		// from W, b and the activations alone.
		panic(fmt.Sprintf("network: %s: network has batch normalisation or whitened layers; exact Hessians, residuals and matrix-free products support plain affine networks only", op))
	}
	net.Forward(X)
	recs := net.Records()
	L := len(recs)
	lay := secondorder.NewLayout(recs)
	st := &netState{n: net.BatchSize(), lay: lay, off: lay.Offsets, loss: loss}
	for l := 0; l < L; l++ {
		ly := net.Layer(l)
		st.w = append(st.w, mat.DenseCopyOf(ly.W()))
		st.acts = append(st.acts, ly.Activation())
		st.h = append(st.h, mat.DenseCopyOf(recs[l].Input))
		st.a = append(st.a, mat.DenseCopyOf(ly.PreActivations()))
		st.f = append(st.f, mat.DenseCopyOf(ly.Outputs()))
	}
	_, st.k = st.a[L-1].Dims()
	if err := loss.Check(st.acts[L-1]); err != nil {
		panic(fmt.Sprintf("network: %s: %v", op, err))
	}
	if Y == nil {
		st.y = st.f[L-1]
		return st
	}
	net.Backward(loss, Y)
	st.y = mat.DenseCopyOf(Y)
	for l := 0; l < L; l++ {
		st.grad = append(st.grad, mat.DenseCopyOf(recs[l].Grad))
	}
	st.gradF = mat.NewDense(st.n, st.k, nil)
	loss.GradF(st.gradF, st.output(), st.y)
	return st
}

func (st *netState) layers() int { return len(st.w) }

func (st *netState) dim() int { return st.off[len(st.off)-1] }

// output returns the output layer's state as an nn.Output.
func (st *netState) output() nn.Output {
	L := st.layers()
	return nn.Output{Act: st.acts[L-1], A: st.a[L-1], F: st.f[L-1]}
}

// unpack splits a parameter vector in the layout of nn.Network.Params into
// per-layer weight directions V_l (n_out × n_in) and bias directions c_l.
func (st *netState) unpack(v mat.Vector, V []*mat.Dense, c [][]float64) {
	for l, w := range st.w {
		out, in := w.Dims()
		p := st.off[l]
		for col := 0; col < in; col++ {
			for r := 0; r < out; r++ {
				V[l].Set(r, col, v.AtVec(p))
				p++
			}
		}
		for r := 0; r < out; r++ {
			c[l][r] = v.AtVec(p)
			p++
		}
	}
}

// pack is the inverse of unpack, writing into dst.
func (st *netState) pack(dst *mat.VecDense, V []*mat.Dense, c [][]float64) {
	for l, w := range st.w {
		out, in := w.Dims()
		p := st.off[l]
		for col := 0; col < in; col++ {
			for r := 0; r < out; r++ {
				dst.SetVec(p, V[l].At(r, col))
				p++
			}
		}
		for r := 0; r < out; r++ {
			dst.SetVec(p, c[l][r])
			p++
		}
	}
}

// matching reports whether the loss matches the output activation in the
// sense of Schraudolph (2002), so that nn's D_a for nn.GaussNewton and
// SplitLogits is the Hessian of l(φ(a)) with respect to a.
func matching(loss nn.Loss, act nn.Activation) bool {
	switch loss.(type) {
	case nn.Quadratic:
		_, ok := act.(nn.Identity)
		return ok
	case nn.BinaryCrossEntropy:
		_, ok := act.(nn.Sigmoid)
		return ok
	case nn.CrossEntropy:
		_, ok := act.(nn.Softmax)
		return ok
	}
	return false
}

// contraction writes into dst (k×k, zeroed first) the second-derivative
// term of the output activation contracted with u = ∂l/∂f,
//
//	Σ_j u_j ∇²_a φ_j(a),
//
// which is diag(u ⊙ φ″(a)) for an elementwise φ and, for the softmax with
// w = u − (u·f) 1, diag(f ⊙ w) − (f ⊙ w) fᵀ − f (f ⊙ w)ᵀ.
func contraction(dst *mat.Dense, act nn.Activation, a, f, u []float64) {
	dst.Zero()
	switch act := act.(type) {
	case nn.Elementwise:
		for j := range u {
			dst.Set(j, j, u[j]*act.Deriv2(a[j], f[j]))
		}
	case nn.Softmax:
		uf := 0.0
		for j := range u {
			uf += u[j] * f[j]
		}
		fw := make([]float64, len(u))
		for j := range u {
			fw[j] = f[j] * (u[j] - uf)
		}
		for p := range u {
			for q := range u {
				v := -fw[p]*f[q] - f[p]*fw[q]
				if p == q {
					v += fw[p]
				}
				dst.Set(p, q, v)
			}
		}
	default:
		panic(fmt.Sprintf("network: no second derivative for activation %s", act.Name()))
	}
}

// elementwise returns the hidden activation of layer l as an Elementwise,
// panicking if it is not one.
func (st *netState) elementwise(l int, op string) nn.Elementwise {
	e, ok := st.acts[l].(nn.Elementwise)
	if !ok {
		panic(fmt.Sprintf("network: %s: hidden activation %s of layer %d is not elementwise", op, st.acts[l].Name(), l))
	}
	return e
}
