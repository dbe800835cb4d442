package network

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/matutil"
	"github.com/secondorder/secondorder/nn"
)

// Jacobians runs net.Forward(X) and returns the per-example jacobians of the
// network's output with respect to all its parameters, J_i (k × P) for
// example i, columns in the layout of nn.Network.Params: with s =
// nn.SplitLogits the jacobian J_a of the output pre-activations (the
// logits), with nn.SplitOutputs the jacobian J_f = J_φ J_a of the outputs
// f = φ(a) (thesis §3.1.4).
//
// They are built by backpropagating unit vectors: the k rows of the identity
// (or of J_φ(a_i)) for every example go through net.BackwardVectors, which
// leaves in layer l's record Back the rows J_{a_l}ᵀ e_j, and by eq. 3.3.1
// the columns of layer l are J_θl = (h̃_iᵀ) ⊗ J_{a_l}. The records' Back are
// overwritten. Cost: O(n k P) memory; for small networks and tests.
func Jacobians(net *nn.Network, X mat.Matrix, s nn.Split) []*mat.Dense {
	if net == nil {
		panic("network: Jacobians: nil network")
	}
	net.Forward(X)
	o := net.Output()
	n, k := o.Dims()
	v := mat.NewDense(n*k, k, nil)
	idx := make([]int, n*k)
	jphi := mat.NewDense(k, k, nil)
	for i := 0; i < n; i++ {
		switch s {
		case nn.SplitLogits:
			for j := 0; j < k; j++ {
				v.Set(i*k+j, j, 1)
			}
		case nn.SplitOutputs:
			nn.Jacobian(jphi, o, i)
			for j := 0; j < k; j++ {
				copy(matutil.Row(v, i*k+j), matutil.Row(jphi, j))
			}
		default:
			panic(fmt.Sprintf("network: Jacobians: unknown %v", s))
		}
		for j := 0; j < k; j++ {
			idx[i*k+j] = i
		}
	}
	net.BackwardVectors(v, idx)
	recs := net.Records()
	off := secondorder.NewLayout(recs).Offsets
	J := make([]*mat.Dense, n)
	for i := range J {
		J[i] = mat.NewDense(k, off[len(off)-1], nil)
	}
	for l, rec := range recs {
		for i := 0; i < n; i++ {
			h := matutil.Row(rec.Input, i)
			for j := 0; j < k; j++ {
				kronRow(matutil.Row(J[i], j)[off[l]:off[l+1]], h, matutil.Row(rec.Back, i*k+j))
			}
		}
	}
	return J
}

// GaussNewtonMatrix writes into dst the full Gauss–Newton
// (c = nn.GaussNewton) or Fisher (c = nn.Fisher) matrix of the network at
// the batch (X, Y), with all its cross-layer blocks (thesis §3.1.4, §3.2.2):
//
//	G = (1/n) Σ_i J_iᵀ D_i J_i,
//
// with the explicit jacobians of Jacobians for the split s: for
// nn.SplitLogits J_a and D_a = loss.DLogits(c, SplitLogits), for
// nn.SplitOutputs J_f and the D of tables 3.I and 3.II, loss.DOutputs(c).
// Y may be nil for the Fisher, which does not depend on the targets. It
// runs net.Forward and overwrites the records' Back. An empty dst is
// resized; otherwise it must be P×P. Cost O(n k P²): for small networks.
func GaussNewtonMatrix(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y mat.Matrix, c nn.Curvature, s nn.Split) {
	if loss == nil {
		panic("network: GaussNewtonMatrix: nil loss")
	}
	if Y == nil && c != nn.Fisher {
		panic("network: GaussNewtonMatrix: the Gauss–Newton matrix needs targets")
	}
	J := Jacobians(net, X, s)
	o := net.Output()
	o = nn.Output{Act: o.Act, A: mat.DenseCopyOf(o.A), F: mat.DenseCopyOf(o.F)}
	n, k := o.Dims()
	y := o.F
	if Y != nil {
		y = matutil.AsDense(Y)
	}
	_, p := J[0].Dims()
	matutil.ReuseSym("network", dst, p, "GaussNewtonMatrix")
	d := mat.NewDense(k, k, nil)
	var dj mat.Dense
	acc := mat.NewDense(p, p, nil)
	var t mat.Dense
	for i := 0; i < n; i++ {
		if s == nn.SplitLogits {
			loss.DLogits(d, c, s, o, y, i)
		} else {
			loss.DOutputs(d, c, o, y, i)
		}
		dj.Mul(d, J[i])
		t.Mul(J[i].T(), &dj)
		acc.Add(acc, &t)
	}
	acc.Scale(1/float64(n), acc)
	matutil.SymFromDense("network", dst, acc, "GaussNewtonMatrix")
}

// FisherMatrix writes into dst the full Fisher information matrix of the
// network at the inputs X (thesis §3.2.2, table 3.II): GaussNewtonMatrix
// with nn.Fisher, which needs no targets and is the same for both splits.
func FisherMatrix(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X mat.Matrix) {
	GaussNewtonMatrix(dst, net, loss, X, nil, nn.Fisher, nn.SplitLogits)
}

// EmpiricalFisherMatrix writes into dst the full empirical Fisher matrix at
// the batch (X, Y) (thesis §3.1.5),
//
//	(1/n) Σ_i ∇_θ l_i ∇_θ l_iᵀ,
//
// the mean outer product of the per-example parameter gradients, which are
// h̃_i ⊗ ∇_{a_l} l_i for layer l (eq. 3.3.1) from net.Backward. It runs
// net.Forward and net.Backward. An empty dst is resized.
func EmpiricalFisherMatrix(dst *mat.SymDense, net *nn.Network, loss nn.Loss, X, Y mat.Matrix) {
	st := snapshot(net, loss, X, Y, "EmpiricalFisherMatrix")
	p := st.dim()
	z := mat.NewDense(st.n, p, nil)
	for l := range st.w {
		for i := 0; i < st.n; i++ {
			kronRow(matutil.Row(z, i)[st.off[l]:st.off[l+1]], matutil.Row(st.h[l], i), matutil.Row(st.grad[l], i))
		}
	}
	matutil.ReuseSym("network", dst, p, "EmpiricalFisherMatrix")
	dst.SymOuterK(1/float64(st.n), z.T())
}

// kronRow writes h̃ ⊗ g, h̃ = (h, 1), into dst of length (len(h)+1)·len(g):
// vec(g h̃ᵀ), a layer's part of a parameter gradient or jacobian row in the
// order of θ = [vec(W); b].
func kronRow(dst, h, g []float64) {
	out, in := len(g), len(h)
	for c := 0; c <= in; c++ {
		hc := 1.0
		if c < in {
			hc = h[c]
		}
		for q, gv := range g {
			dst[c*out+q] = hc * gv
		}
	}
}
