package network

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/matutil"
	"github.com/secondorder/secondorder/nn"
)

// ResidualMatrix writes into dst the residual term of the Gauss–Newton
// approximation (thesis §3.1.4) of the risk at the batch (X, Y),
//
//	(1/n) Σ_i Σ_j (∂l_i/∂z_j) ∇²_θ z_j(x_i),
//
// so that HessianMatrix = GaussNewtonMatrix(nn.GaussNewton, s) +
// ResidualMatrix(s). z is the output pre-activation a (the logits) for
// nn.SplitLogits when the loss matches the output activation, and the
// output f otherwise (see NewResidualOperator).
//
// Unlike NewResidualOperator, which differentiates backpropagation, it uses
// second-order forward passes (forward-over-forward mode): for every pair
// of unit directions e_p, e_q it propagates the first derivatives ∂_p, ∂_q
// and the mixed second derivative of every layer,
//
//	∂_pq a_l = (∂_p W_l)(∂_q h_l) + (∂_q W_l)(∂_p h_l) + W_l ∂_pq h_l,
//	∂_pq h_{l+1} = φ'(a_l) ⊙ ∂_pq a_l + φ″(a_l) ⊙ ∂_p a_l ⊙ ∂_q a_l,
//
// (at a softmax output, J_φ ∂_pq a + ∇²φ[∂_p a, ∂_q a]) and contracts
// ∂_pq z with ∂l/∂z. It costs O(P²) forward passes: for small networks and
// tests. It runs net.Forward and net.Backward. An empty dst is resized.
func ResidualMatrix(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y mat.Matrix, s nn.Split) {
	if Y == nil {
		panic("network: ResidualMatrix: nil targets")
	}
	if s != nn.SplitLogits && s != nn.SplitOutputs {
		panic(fmt.Sprintf("network: ResidualMatrix: unknown %v", s))
	}
	st := snapshot(net, loss, X, Y, "ResidualMatrix")
	L := st.layers()
	for l := 0; l+1 < L; l++ {
		st.elementwise(l, "ResidualMatrix")
	}
	atLogits := s == nn.SplitLogits && matching(loss, st.acts[L-1])
	w := st.gradF
	if atLogits {
		w = st.grad[L-1]
	}
	p := st.dim()
	matutil.ReuseSym("network", dst, p, "ResidualMatrix")
	jf := newJetForward(st)
	first := make([]*jet, p)
	for q := 0; q < p; q++ {
		first[q] = jf.first(q)
	}
	for q := 0; q < p; q++ {
		for r := q; r < p; r++ {
			z := jf.second(first[q], first[r], atLogits)
			v := 0.0
			for i := 0; i < st.n; i++ {
				wi, zi := matutil.Row(w, i), matutil.Row(z, i)
				for j := range wi {
					v += wi[j] * zi[j]
				}
			}
			dst.SetSym(q, r, v/float64(st.n))
		}
	}
}

// jet holds the first derivatives of a forward pass along one unit
// direction of the parameters: ∂a_l and ∂h_l (∂h_0 = 0) for every layer,
// and the layer, row, column of the parameter (column n_in for a bias).
type jet struct {
	da, dh          []*mat.Dense
	layer, row, col int
}

type jetForward struct {
	st *netState
}

func newJetForward(st *netState) *jetForward { return &jetForward{st: st} }

// param returns the layer, row and column of parameter q (col = n_in for a
// bias).
func (jf *jetForward) param(q int) (l, row, col int) {
	st := jf.st
	for l = 0; q >= st.off[l+1]; l++ {
	}
	out, _ := st.w[l].Dims()
	q -= st.off[l]
	return l, q % out, q / out
}

// first propagates the first derivative along parameter q.
func (jf *jetForward) first(q int) *jet {
	st := jf.st
	L := st.layers()
	l0, row, col := jf.param(q)
	j := &jet{layer: l0, row: row, col: col}
	for l := 0; l < L; l++ {
		out, in := st.w[l].Dims()
		da := mat.NewDense(st.n, out, nil)
		dh := mat.NewDense(st.n, in, nil)
		if l > 0 {
			dh = hNext(st, l-1, j.da[l-1])
			da.Mul(dh, st.w[l].T())
		}
		if l == l0 {
			// ∂a = (∂W) h + ∂b: one entry of W or b.
			for i := 0; i < st.n; i++ {
				x := 1.0
				if col < in {
					x = st.h[l].At(i, col)
				}
				da.Set(i, row, da.At(i, row)+x)
			}
		}
		j.da = append(j.da, da)
		j.dh = append(j.dh, dh)
	}
	return j
}

// hNext returns φ'(a_l) ⊙ d for a hidden layer l.
func hNext(st *netState, l int, d *mat.Dense) *mat.Dense {
	e := st.acts[l].(nn.Elementwise)
	r, c := d.Dims()
	out := mat.NewDense(r, c, nil)
	for i := 0; i < r; i++ {
		for k := 0; k < c; k++ {
			a, f := st.a[l].At(i, k), st.f[l].At(i, k)
			out.Set(i, k, e.Deriv(a, f)*d.At(i, k))
		}
	}
	return out
}

// second returns ∂_pq z (n × k) at the split point: the logits when
// atLogits, the outputs otherwise.
func (jf *jetForward) second(u, v *jet, atLogits bool) *mat.Dense {
	st := jf.st
	L := st.layers()
	var d2h *mat.Dense // ∂_pq h_l; zero for l = 0
	var d2a *mat.Dense
	for l := 0; l < L; l++ {
		out, in := st.w[l].Dims()
		d2a = mat.NewDense(st.n, out, nil)
		if l > 0 {
			d2a.Mul(d2h, st.w[l].T())
		}
		// (∂_p W_l)(∂_q h_l): the unit direction p touches W_l[row, col]
		// only; a bias has no second-order term.
		for _, pair := range [2][2]*jet{{u, v}, {v, u}} {
			a, b := pair[0], pair[1]
			if a.layer == l && a.col < in {
				for i := 0; i < st.n; i++ {
					d2a.Set(i, a.row, d2a.At(i, a.row)+b.dh[l].At(i, a.col))
				}
			}
		}
		if l+1 == L {
			break
		}
		e := st.acts[l].(nn.Elementwise)
		d2h = mat.NewDense(st.n, out, nil)
		for i := 0; i < st.n; i++ {
			for k := 0; k < out; k++ {
				a, f := st.a[l].At(i, k), st.f[l].At(i, k)
				d2h.Set(i, k, e.Deriv(a, f)*d2a.At(i, k)+e.Deriv2(a, f)*u.da[l].At(i, k)*v.da[l].At(i, k))
			}
		}
	}
	if atLogits {
		return d2a
	}
	// Through the output activation: J_φ ∂_pq a + ∇²φ[∂_p a, ∂_q a].
	act := st.acts[L-1]
	n, k := st.n, st.k
	z := mat.NewDense(n, k, nil)
	act.Backward(z, d2a, st.a[L-1], st.f[L-1], nil)
	for i := 0; i < n; i++ {
		a, f := matutil.Row(st.a[L-1], i), matutil.Row(st.f[L-1], i)
		x, y := matutil.Row(u.da[L-1], i), matutil.Row(v.da[L-1], i)
		zr := matutil.Row(z, i)
		switch act := act.(type) {
		case nn.Elementwise:
			for j := range zr {
				zr[j] += act.Deriv2(a[j], f[j]) * x[j] * y[j]
			}
		case nn.Softmax:
			// ∂²f_j/∂a_p∂a_q contracted with x, y:
			// f_j [(x_j − f·x)(y_j − f·y) − (Σ_m f_m x_m y_m − (f·x)(f·y))].
			fx, fy, fxy := 0.0, 0.0, 0.0
			for m := range f {
				fx += f[m] * x[m]
				fy += f[m] * y[m]
				fxy += f[m] * x[m] * y[m]
			}
			for j := range zr {
				zr[j] += f[j] * ((x[j]-fx)*(y[j]-fy) - (fxy - fx*fy))
			}
		default:
			panic(fmt.Sprintf("network: ResidualMatrix: no second derivative for activation %s", act.Name()))
		}
	}
	return z
}
