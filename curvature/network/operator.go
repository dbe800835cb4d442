package network

import (
	"fmt"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/matutil"
	"github.com/secondorder/secondorder/nn"
)

// Operator is a matrix-free curvature matrix of a network at one batch: the
// Hessian of the risk, its Gauss–Newton or Fisher matrix, or the residual
// between the two, applied to vectors in the layout of nn.Network.Params
// (MulVec) or to per-layer directions (MulDirections).
// It holds a copy of the network's forward (and backward) pass, so it stays
// valid when the network moves on; it is the matrix at the parameters and
// batch it was made with. An Operator is not safe for concurrent use.
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
	st *netState
	// M_i, k×k, is held as the row i of dm (n×k) when it is diagonal
	// (diag[i]), which is the case of every elementwise output activation
	// with the package's losses, and as m[i] otherwise; nil: zero.
	m     []*mat.Dense
	dm    *mat.Dense
	diag  []bool
	grads bool // include the terms in g_l

	gh      []*mat.Dense // W_lᵀ g_l as rows: g_l W_l, n × n_in (l ≥ 1)
	vw, dvw []*mat.Dense // the direction's and the product's weight parts, n_out × n_in
	vb, dvb [][]float64  // their bias parts
	ra, rh  []*mat.Dense
	rg      []*mat.Dense
	t, u    []*mat.Dense // n × n_in
	rt      []*mat.Dense // n × n_out
	tmp     []*mat.Dense // n_out × n_in
	// Transposed views, made once: boxing m.T() in a mat.Matrix at every
	// product would allocate.
	vwT, wT, rgT, gradT []mat.Matrix
}

// NewHessianOperator returns the Hessian of the risk
// R = (1/n) Σ_i l(f(x_i), y_i) with respect to all the parameters (thesis
// §3.1.4): the Gauss–Newton part
// plus the residual Σ_j (∂l/∂f_j) ∇²f_j. At the output, M_i is the exact
// Hessian of l(φ(a)) in a: nn's D_a for nn.GaussNewton and SplitLogits when
// the loss matches the output activation (Quadratic+Identity,
// BinaryCrossEntropy+Sigmoid, CrossEntropy+Softmax), and otherwise
// J_φᵀ (∂²l/∂f²) J_φ + Σ_j (∂l/∂f_j) ∇²_a φ_j. Hidden activations must be
// elementwise (nn.Elementwise). It runs net.Forward and net.Backward.
func NewHessianOperator(net *nn.Network, loss nn.Loss, X, Y mat.Matrix) *Operator {
	if Y == nil {
		panic("network: NewHessianOperator: nil targets")
	}
	st := snapshot(net, loss, X, Y, "NewHessianOperator")
	op := newOperator(st, true, "NewHessianOperator")
	o := st.output()
	c := mat.NewDense(st.k, st.k, nil)
	var diag func(d []float64, i int) bool
	if dl, ok := loss.(nn.DiagonalLoss); ok && matching(loss, o.Act) {
		diag = func(d []float64, i int) bool { return dl.DLogitsDiag(d, nn.GaussNewton, nn.SplitLogits, o, st.y, i) }
	}
	op.setM(diag, func(m *mat.Dense, i int) {
		if matching(loss, o.Act) {
			loss.DLogits(m, nn.GaussNewton, nn.SplitLogits, o, st.y, i)
			return
		}
		loss.DLogits(m, nn.GaussNewton, nn.SplitOutputs, o, st.y, i)
		contraction(c, o.Act, matutil.Row(o.A, i), matutil.Row(o.F, i), matutil.Row(st.gradF, i))
		m.Add(m, c)
	})
	return op
}

// NewGaussNewtonOperator returns the Gauss–Newton (c = nn.GaussNewton) or
// Fisher (c = nn.Fisher) matrix for the split s as an operator: the
// matrix-free products of Schraudolph (2002),
//
//	G v = (1/n) Σ_i J_iᵀ D_a,i J_i v,
//
// J_i v from the R-forward pass, D_a = loss.DLogits(c, s) at the logits,
// and J_iᵀ by backpropagation. It is GaussNewtonMatrix as a product. Y may
// be nil for the Fisher (see NewFisherOperator). It runs net.Forward (and
// net.Backward when Y is given).
func NewGaussNewtonOperator(net *nn.Network, loss nn.Loss, X, Y mat.Matrix, c nn.Curvature, s nn.Split) *Operator {
	if Y == nil && c != nn.Fisher {
		panic("network: NewGaussNewtonOperator: the Gauss–Newton matrix needs targets")
	}
	st := snapshot(net, loss, X, Y, "NewGaussNewtonOperator")
	op := newOperator(st, false, "NewGaussNewtonOperator")
	o := st.output()
	var diag func(d []float64, i int) bool
	if dl, ok := loss.(nn.DiagonalLoss); ok {
		diag = func(d []float64, i int) bool { return dl.DLogitsDiag(d, c, s, o, st.y, i) }
	}
	op.setM(diag, func(m *mat.Dense, i int) { loss.DLogits(m, c, s, o, st.y, i) })
	return op
}

// NewFisherOperator returns the Fisher information matrix of the network at
// the inputs X (thesis §3.2.2, table 3.II) as an operator, the
// Fisher-vector products
//
//	F v = (1/n) Σ_i J_iᵀ D_a,i J_i v
//
// with the D_a of table 3.II at the logits, which depends neither on the
// targets nor on the split: NewGaussNewtonOperator with nn.Fisher and no
// targets. It is FisherMatrix as a product. It runs net.Forward.
func NewFisherOperator(net *nn.Network, loss nn.Loss, X mat.Matrix) *Operator {
	return NewGaussNewtonOperator(net, loss, X, nil, nn.Fisher, nn.SplitLogits)
}

// NewResidualOperator returns the residual of the Gauss–Newton
// approximation of thesis §3.1.4 for the split s, the Hessian minus
// GaussNewtonMatrix with nn.GaussNewton and s, as an operator:
//
//	(1/n) Σ_i Σ_j (∂l_i/∂z_j) ∇²_θ z_j(x_i),
//
// where z is the output pre-activation a (the logits) for nn.SplitLogits
// when the loss matches the output activation, and the output f otherwise
// (nn's D_a for a loss that does not match its activation is the pull-back
// of ∂²l/∂f² for both splits). It is the R-operator with the loss replaced
// by the linear functional z ↦ (∂l/∂z)ᵀ z, whose Hessian in z is zero: M_i
// is 0 at the logits and Σ_j (∂l/∂f_j) ∇²_a φ_j at the outputs.
// ResidualMatrix computes the same matrix densely by a different method.
func NewResidualOperator(net *nn.Network, loss nn.Loss, X, Y mat.Matrix, s nn.Split) *Operator {
	if Y == nil {
		panic("network: NewResidualOperator: nil targets")
	}
	st := snapshot(net, loss, X, Y, "NewResidualOperator")
	op := newOperator(st, true, "NewResidualOperator")
	o := st.output()
	if s == nn.SplitLogits && matching(loss, o.Act) {
		return op
	}
	op.setM(nil, func(m *mat.Dense, i int) {
		contraction(m, o.Act, matutil.Row(o.A, i), matutil.Row(o.F, i), matutil.Row(st.gradF, i))
	})
	return op
}

// setM sets every M_i: to the diagonal that diag writes into row i of dm
// when diag is set and reports true (nn.DiagonalLoss), and otherwise to the
// matrix that fill writes into its k×k argument (zeroed) for example i,
// kept as a row of dm as well when it is diagonal: a dense k×k matrix per
// example would take n k² floats (490 MB for the benchmark autoencoder at
// batch 100) where n k suffice.
func (op *Operator) setM(diag func(d []float64, i int) bool, fill func(m *mat.Dense, i int)) {
	st := op.st
	var tmp *mat.Dense
	op.dm = mat.NewDense(st.n, st.k, nil)
	op.diag = make([]bool, st.n)
	for i := range op.m {
		if diag != nil && diag(matutil.Row(op.dm, i), i) {
			op.diag[i] = true
			continue
		}
		if tmp == nil {
			tmp = mat.NewDense(st.k, st.k, nil)
		}
		tmp.Zero()
		fill(tmp, i)
		if isDiagonal(tmp) {
			d := matutil.Row(op.dm, i)
			for j := range d {
				d[j] = tmp.At(j, j)
			}
			op.diag[i] = true
			continue
		}
		op.m[i] = mat.DenseCopyOf(tmp)
	}
}

// isDiagonal reports whether the square matrix m is zero off its diagonal.
func isDiagonal(m *mat.Dense) bool {
	k, _ := m.Dims()
	for p := 0; p < k; p++ {
		for q, v := range matutil.Row(m, p) {
			if v != 0 && p != q {
				return false
			}
		}
	}
	return true
}

func newOperator(st *netState, grads bool, name string) *Operator {
	L := st.layers()
	op := &Operator{st: st, grads: grads, m: make([]*mat.Dense, st.n)}
	op.vb = make([][]float64, L)
	op.dvb = make([][]float64, L)
	for l := 0; l < L; l++ {
		out, in := st.w[l].Dims()
		op.vw = append(op.vw, mat.NewDense(out, in, nil))
		op.dvw = append(op.dvw, mat.NewDense(out, in, nil))
		op.vb[l] = make([]float64, out)
		op.dvb[l] = make([]float64, out)
		op.ra = append(op.ra, mat.NewDense(st.n, out, nil))
		op.rh = append(op.rh, mat.NewDense(st.n, in, nil))
		op.rg = append(op.rg, mat.NewDense(st.n, out, nil))
		op.t = append(op.t, mat.NewDense(st.n, in, nil))
		op.u = append(op.u, mat.NewDense(st.n, in, nil))
		op.rt = append(op.rt, mat.NewDense(st.n, out, nil))
		op.tmp = append(op.tmp, mat.NewDense(out, in, nil))
		op.vwT = append(op.vwT, op.vw[l].T())
		op.wT = append(op.wT, st.w[l].T())
		op.rgT = append(op.rgT, op.rg[l].T())
		if grads {
			op.gradT = append(op.gradT, st.grad[l].T())
		}
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
// length P. An empty dst is resized. It reuses the operator's buffers and
// does not allocate.
func (op *Operator) MulVec(dst *mat.VecDense, v mat.Vector) {
	st := op.st
	p := st.dim()
	if v.Len() != p {
		panic(fmt.Sprintf("network: Operator.MulVec: vector has length %d, want %d", v.Len(), p))
	}
	matutil.ReuseVec("network", dst, p, "Operator.MulVec")
	st.unpack(v, op.vw, op.vb)
	op.mul()
	st.pack(dst, op.dvw, op.dvb)
}

// mul computes the product of the direction in vw, vb into dvw, dvb.
func (op *Operator) mul() {
	st := op.st
	L := st.layers()

	// R-forward pass.
	for l := 0; l < L; l++ {
		ra := op.ra[l]
		ra.Mul(st.h[l], op.vwT[l])
		if l > 0 {
			op.rt[l].Mul(op.rh[l], op.wT[l])
			ra.Add(ra, op.rt[l])
		}
		for i := 0; i < st.n; i++ {
			r := matutil.Row(ra, i)
			for j := range r {
				r[j] += op.vb[l][j]
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
		y, x := matutil.Row(last, i), matutil.Row(op.ra[L-1], i)
		if op.diag != nil && op.diag[i] {
			for p, d := range matutil.Row(op.dm, i) {
				y[p] = d * x[p]
			}
			continue
		}
		if m == nil {
			continue
		}
		for p := range y {
			s := 0.0
			for q, mv := range matutil.Row(m, p) {
				s += mv * x[q]
			}
			y[p] = s
		}
	}

	// R-backward pass.
	inv := 1 / float64(st.n)
	for l := L - 1; l >= 0; l-- {
		rg := op.rg[l]
		op.dvw[l].Mul(op.rgT[l], st.h[l])
		if op.grads && l > 0 {
			op.tmp[l].Mul(op.gradT[l], op.rh[l])
			op.dvw[l].Add(op.dvw[l], op.tmp[l])
		}
		scale(op.dvw[l], inv)
		for j := range op.dvb[l] {
			op.dvb[l][j] = 0
		}
		for i := 0; i < st.n; i++ {
			for j, x := range matutil.Row(rg, i) {
				op.dvb[l][j] += x
			}
		}
		for j := range op.dvb[l] {
			op.dvb[l][j] *= inv
		}
		if l == 0 {
			break
		}
		t := op.t[l]
		t.Mul(rg, st.w[l])
		if op.grads {
			op.u[l].Mul(st.grad[l], op.vw[l])
			t.Add(t, op.u[l])
		}
		prev := op.rg[l-1]
		st.acts[l-1].Backward(prev, t, st.a[l-1], st.f[l-1], nil)
		if op.grads {
			e := st.acts[l-1].(nn.Elementwise)
			for i := 0; i < st.n; i++ {
				pr, a, f := matutil.Row(prev, i), matutil.Row(st.a[l-1], i), matutil.Row(st.f[l-1], i)
				ra, gh := matutil.Row(op.ra[l-1], i), matutil.Row(op.gh[l], i)
				for j := range pr {
					pr[j] += e.Deriv2(a[j], f[j]) * ra[j] * gh[j]
				}
			}
		}
	}
}

// MulDirections writes into dst the product of the operator's matrix M with
// the per-layer directions v, dst = M v, where the directions stand for the
// parameter vector θ = [vec(ΔW_l); Δb_l] concatenated over the layers
// (secondorder.Layout, the layout of nn.Network.Params): dst and v hold one
// secondorder.Direction per affine layer of the network, shaped like its W
// and b. dst may be v. It has the type of optim.Problem.GNVec, so that
//
//	opt.Problem.GNVec = network.NewGaussNewtonOperator(net, loss, x, y, nn.GaussNewton, nn.SplitLogits).MulDirections
//
// wires an optimizer to exact Gauss–Newton-vector products; the error is
// always nil. It reuses the operator's buffers and, after the first call,
// does not allocate. Cost: that of MulVec.
func (op *Operator) MulDirections(dst, v []secondorder.Direction) error {
	op.checkDirections(v)
	op.checkDirections(dst)
	for l := range v {
		op.vw[l].Copy(v[l].W)
		for j := range op.vb[l] {
			op.vb[l][j] = v[l].B.AtVec(j)
		}
	}
	op.mul()
	for l := range dst {
		dst[l].W.Copy(op.dvw[l])
		for j, x := range op.dvb[l] {
			dst[l].B.SetVec(j, x)
		}
	}
	return nil
}

// checkDirections panics unless d has one direction per layer, shaped like
// its W and B.
func (op *Operator) checkDirections(d []secondorder.Direction) {
	if len(d) != len(op.vw) {
		panic(fmt.Sprintf("network: Operator.MulDirections: %d directions, want %d", len(d), len(op.vw)))
	}
	for l, x := range d {
		r, c := x.W.Dims()
		out, in := op.vw[l].Dims()
		if r != out || c != in || x.B.Len() != out {
			panic(fmt.Sprintf("network: Operator.MulDirections: direction %d is %d×%d, want %d×%d", l, r, c, out, in))
		}
	}
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
	matutil.SymFromDense("network", dst, full, "Operator.Dense")
}

// HessianMatrix writes into dst the full Hessian of the risk with respect
// to all the parameters, analytic (thesis §3.1.4): NewHessianOperator
// applied to the unit vectors. It runs net.Forward and net.Backward. An empty dst is resized.
func HessianMatrix(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y mat.Matrix) {
	NewHessianOperator(net, loss, X, Y).Dense(dst)
}

// scale multiplies m by s in place (mat.Dense.Scale with m as its own
// argument takes a workspace).
func scale(m *mat.Dense, s float64) {
	raw := m.RawMatrix()
	for i := 0; i < raw.Rows; i++ {
		floats.Scale(s, raw.Data[i*raw.Stride:i*raw.Stride+raw.Cols])
	}
}
