package curvature

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/nn"
)

// Operator is a matrix-free curvature matrix of a network at one batch: the
// Hessian of the risk, its Gauss–Newton or Fisher matrix, or the residual
// between the two, applied to vectors in the layout of nn.Network.Params.
// It holds a copy of the network's forward (and backward) pass, so it stays
// valid when the network moves on; it is the matrix at the parameters and
// batch it was made with. Not safe for concurrent use.
//
// All three are computed with Pearlmutter's (1994) R-operator: an R-forward
// pass propagates the directional derivatives R{a_l} = J_{a_l} v (the
// linearised network, Schraudolph 2002),
//
//	R{a_l} = V_l h_l + W_l R{h_l} + c_l,   R{h_{l+1}} = J_φ(a_l) R{a_l},
//
// for the direction v = (vec(V_l), c_l)_l; at the output pre-activations a
// per-example k×k matrices M_i turn R{a} into R{∇_a l} = M_i R{a}; an
// R-backward pass then differentiates backpropagation,
//
//	R{∇W_l} = (1/n) Σ_i R{g_l,i} h_l,iᵀ + g_l,i R{h_l,i}ᵀ,   R{∇b_l} = (1/n) Σ_i R{g_l,i},
//	R{g_{l−1}} = φ'(a_{l−1}) ⊙ (W_lᵀ R{g_l} + V_lᵀ g_l) + φ″(a_{l−1}) ⊙ R{a_{l−1}} ⊙ (W_lᵀ g_l),
//
// with g_l = ∇_{a_l} l. The terms in g_l are the second-order part of the
// chain rule (the residual of thesis §3.1.4); the Gauss–Newton operator
// drops them, which leaves Jᵀ M J v: linearised forward, M, backprop.
// Each product costs about two forward and backward passes; no finite
// differences are involved, so the products are exact to rounding.
type Operator struct {
	st    *netState
	m     []*mat.Dense // M_i, k×k; nil: zero
	grads bool         // include the terms in g_l

	gh     []*mat.Dense // W_lᵀ g_l as rows: g_l W_l, n × n_in (l ≥ 1)
	V, dV  []*mat.Dense
	c, dc  [][]float64
	ra, rh []*mat.Dense
	rg     []*mat.Dense
	t, u   []*mat.Dense // n × n_in
	rt     []*mat.Dense // n × n_out
	tmp    []*mat.Dense // n_out × n_in
}

// NewHessian returns the Hessian of the risk R = (1/n) Σ_i l(f(x_i), y_i)
// with respect to all the parameters (thesis §3.1.4): the Gauss–Newton part
// plus the residual Σ_j (∂l/∂f_j) ∇²f_j. At the output, M_i is the exact
// Hessian of l(φ(a)) in a: nn's D_a for GaussNewton and SplitLogits when
// the loss matches the output activation (Quadratic+Identity,
// BinaryCrossEntropy+Sigmoid, CrossEntropy+Softmax), and otherwise
// J_φᵀ (∂²l/∂f²) J_φ + Σ_j (∂l/∂f_j) ∇²_a φ_j. Hidden activations must be
// elementwise (nn.Elementwise). It runs net.Forward and net.Backward.
func NewHessian(net *nn.Network, loss nn.Loss, X, Y mat.Matrix) *Operator {
	if Y == nil {
		panic("curvature: NewHessian: nil targets")
	}
	st := snapshot(net, loss, X, Y, "NewHessian")
	op := newOperator(st, true, "NewHessian")
	o := st.output()
	c := mat.NewDense(st.k, st.k, nil)
	for i := range op.m {
		op.m[i] = mat.NewDense(st.k, st.k, nil)
		if matching(loss, o.Act) {
			loss.DLogits(op.m[i], nn.GaussNewton, nn.SplitLogits, o, st.y, i)
			continue
		}
		loss.DLogits(op.m[i], nn.GaussNewton, nn.SplitOutputs, o, st.y, i)
		contraction(c, o.Act, rowOf(o.A, i), rowOf(o.F, i), rowOf(st.gradF, i))
		op.m[i].Add(op.m[i], c)
	}
	return op
}

// NewGaussNewton returns the Gauss–Newton (c = nn.GaussNewton) or Fisher
// (c = nn.Fisher) matrix for the split s as an operator: the matrix-free
// products of Schraudolph (2002),
//
//	G v = (1/n) Σ_i J_iᵀ D_a,i J_i v,
//
// J_i v from the R-forward pass, D_a = loss.DLogits(c, s) at the logits,
// and J_iᵀ by backpropagation. It is the dense GaussNewton as a product. Y
// may be nil for the Fisher. It runs net.Forward (and net.Backward when Y is
// given).
func NewGaussNewton(net *nn.Network, loss nn.Loss, X, Y mat.Matrix, c nn.Curvature, s nn.Split) *Operator {
	if Y == nil && c != nn.Fisher {
		panic("curvature: NewGaussNewton: the Gauss–Newton matrix needs targets")
	}
	st := snapshot(net, loss, X, Y, "NewGaussNewton")
	op := newOperator(st, false, "NewGaussNewton")
	o := st.output()
	for i := range op.m {
		op.m[i] = mat.NewDense(st.k, st.k, nil)
		loss.DLogits(op.m[i], c, s, o, st.y, i)
	}
	return op
}

// NewResidual returns the residual of the Gauss–Newton approximation of
// thesis §3.1.4 for the split s, the Hessian minus GaussNewton with
// nn.GaussNewton and s, as an operator:
//
//	(1/n) Σ_i Σ_j (∂l_i/∂z_j) ∇²_θ z_j(x_i),
//
// where z is the output pre-activation a (the logits) for nn.SplitLogits
// when the loss matches the output activation, and the output f otherwise
// (nn's D_a for a loss that does not match its activation is the pull-back
// of ∂²l/∂f² for both splits). It is the R-operator with the loss replaced
// by the linear functional z ↦ (∂l/∂z)ᵀ z, whose Hessian in z is zero: M_i
// is 0 at the logits and Σ_j (∂l/∂f_j) ∇²_a φ_j at the outputs. Residual
// computes the same matrix densely by a different method.
func NewResidual(net *nn.Network, loss nn.Loss, X, Y mat.Matrix, s nn.Split) *Operator {
	if Y == nil {
		panic("curvature: NewResidual: nil targets")
	}
	st := snapshot(net, loss, X, Y, "NewResidual")
	op := newOperator(st, true, "NewResidual")
	o := st.output()
	if s == nn.SplitLogits && matching(loss, o.Act) {
		return op
	}
	for i := range op.m {
		op.m[i] = mat.NewDense(st.k, st.k, nil)
		contraction(op.m[i], o.Act, rowOf(o.A, i), rowOf(o.F, i), rowOf(st.gradF, i))
	}
	return op
}

func newOperator(st *netState, grads bool, name string) *Operator {
	L := st.layers()
	op := &Operator{st: st, grads: grads, m: make([]*mat.Dense, st.n)}
	op.c = make([][]float64, L)
	op.dc = make([][]float64, L)
	for l := 0; l < L; l++ {
		out, in := st.w[l].Dims()
		op.V = append(op.V, mat.NewDense(out, in, nil))
		op.dV = append(op.dV, mat.NewDense(out, in, nil))
		op.c[l] = make([]float64, out)
		op.dc[l] = make([]float64, out)
		op.ra = append(op.ra, mat.NewDense(st.n, out, nil))
		op.rh = append(op.rh, mat.NewDense(st.n, in, nil))
		op.rg = append(op.rg, mat.NewDense(st.n, out, nil))
		op.t = append(op.t, mat.NewDense(st.n, in, nil))
		op.u = append(op.u, mat.NewDense(st.n, in, nil))
		op.rt = append(op.rt, mat.NewDense(st.n, out, nil))
		op.tmp = append(op.tmp, mat.NewDense(out, in, nil))
		if l < L-1 && grads {
			st.elementwise(l, name)
		}
	}
	if grads {
		op.gh = make([]*mat.Dense, L)
		for l := 1; l < L; l++ {
			_, in := st.w[l].Dims()
			op.gh[l] = mat.NewDense(st.n, in, nil)
			op.gh[l].Mul(st.grad[l], st.w[l])
		}
	}
	return op
}

// Dim returns the number of parameters P.
func (op *Operator) Dim() int { return op.st.dim() }

// MulVec writes dst = M v for the operator's matrix M and a vector v of
// length P. An empty dst is resized. It reuses the operator's buffers.
func (op *Operator) MulVec(dst *mat.VecDense, v mat.Vector) {
	st := op.st
	p := st.dim()
	if v.Len() != p {
		panic(fmt.Sprintf("curvature: Operator.MulVec: vector has length %d, want %d", v.Len(), p))
	}
	reuseVec(dst, p, "Operator.MulVec")
	L := st.layers()
	st.unpack(v, op.V, op.c)

	// R-forward pass.
	for l := 0; l < L; l++ {
		ra := op.ra[l]
		ra.Mul(st.h[l], op.V[l].T())
		if l > 0 {
			op.rt[l].Mul(op.rh[l], st.w[l].T())
			ra.Add(ra, op.rt[l])
		}
		for i := 0; i < st.n; i++ {
			r := rowOf(ra, i)
			for j := range r {
				r[j] += op.c[l][j]
			}
		}
		if l+1 < L {
			// R{h_{l+1}} = J_φ R{a_l}; the jacobians of nn's activations are
			// symmetric, so Backward applies J_φ.
			st.acts[l].Backward(op.rh[l+1], ra, st.a[l], st.f[l], nil)
		}
	}

	// Output: R{g_L} = M_i R{a_L}.
	last := op.rg[L-1]
	last.Zero()
	for i, m := range op.m {
		if m == nil {
			continue
		}
		y, x := rowOf(last, i), rowOf(op.ra[L-1], i)
		for p := range y {
			s := 0.0
			for q, mv := range rowOf(m, p) {
				s += mv * x[q]
			}
			y[p] = s
		}
	}

	// R-backward pass.
	inv := 1 / float64(st.n)
	for l := L - 1; l >= 0; l-- {
		rg := op.rg[l]
		op.dV[l].Mul(rg.T(), st.h[l])
		if op.grads && l > 0 {
			op.tmp[l].Mul(st.grad[l].T(), op.rh[l])
			op.dV[l].Add(op.dV[l], op.tmp[l])
		}
		op.dV[l].Scale(inv, op.dV[l])
		for j := range op.dc[l] {
			op.dc[l][j] = 0
		}
		for i := 0; i < st.n; i++ {
			for j, x := range rowOf(rg, i) {
				op.dc[l][j] += x
			}
		}
		for j := range op.dc[l] {
			op.dc[l][j] *= inv
		}
		if l == 0 {
			break
		}
		t := op.t[l]
		t.Mul(rg, st.w[l])
		if op.grads {
			op.u[l].Mul(st.grad[l], op.V[l])
			t.Add(t, op.u[l])
		}
		prev := op.rg[l-1]
		st.acts[l-1].Backward(prev, t, st.a[l-1], st.f[l-1], nil)
		if op.grads {
			e := st.acts[l-1].(nn.Elementwise)
			for i := 0; i < st.n; i++ {
				pr, a, f := rowOf(prev, i), rowOf(st.a[l-1], i), rowOf(st.f[l-1], i)
				ra, gh := rowOf(op.ra[l-1], i), rowOf(op.gh[l], i)
				for j := range pr {
					pr[j] += e.Deriv2(a[j], f[j]) * ra[j] * gh[j]
				}
			}
		}
	}
	st.pack(dst, op.dV, op.dc)
}

// Dense writes the operator's matrix into dst by applying it to the P unit
// vectors, symmetrized as (M + Mᵀ)/2 (M is symmetric up to rounding). An
// empty dst is resized. Cost: P products.
func (op *Operator) Dense(dst *mat.SymDense) {
	p := op.Dim()
	full := mat.NewDense(p, p, nil)
	e := mat.NewVecDense(p, nil)
	col := mat.NewVecDense(p, nil)
	for q := 0; q < p; q++ {
		e.SetVec(q, 1)
		op.MulVec(col, e)
		e.SetVec(q, 0)
		full.SetCol(q, col.RawVector().Data)
	}
	symFromDense(dst, full, "Operator.Dense")
}

// Hessian writes into dst the full Hessian of the risk with respect to all
// the parameters, analytic (thesis §3.1.4): NewHessian applied to the unit
// vectors. It runs net.Forward and net.Backward. An empty dst is resized.
func Hessian(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y mat.Matrix) {
	NewHessian(net, loss, X, Y).Dense(dst)
}
