package network

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/matutil"
	"github.com/secondorder/secondorder/nn"
)

// Estimator selects which output-side vectors are backpropagated into the
// records' Back, and so which curvature matrix the record-level functions of
// package curvature (DenseBlock, OutputFactor, the blocks) and the
// optimizers built on them approximate. The names are those of the
// estimation modes of kfac-jax. It is built on nn.Curvature, which only
// selects the D of a loss (nn.GaussNewton for table 3.I, nn.Fisher for
// table 3.II): GGNExact and FisherExact backpropagate the square roots of
// those D, FisherGradients and FisherEmpirical sampled or observed-target
// gradients.
type Estimator int

const (
	// GGNExact is the exact Gauss–Newton matrix, D = ∂²l/∂f² of table 3.I
	// (thesis §3.1.4), written at the logits for a Split: k rows of
	// J_aᵀ S_iᵀ per example, S_iᵀ S_i = D_a (nn.Network.BackwardGN).
	// kfac-jax: "ggn_exact".
	GGNExact Estimator = iota
	// FisherExact is the true Fisher information matrix with the exact D of
	// table 3.II (thesis §3.2.2, appendix B), all k output directions per
	// example (nn.Network.BackwardFisher). It does not depend on the
	// targets. kfac-jax: "fisher_exact".
	FisherExact
	// FisherGradients is the Monte-Carlo Fisher of Martens & Grosse (2015,
	// §5): the gradients ∇_a l(f_i, ỹ) at targets ỹ drawn from the model's
	// predictive distribution, Samples of them per example; unbiased for
	// FisherExact. kfac-jax: "fisher_gradients".
	FisherGradients
	// FisherEmpirical is the empirical Fisher: the gradients ∇_a l(f_i, y_i)
	// at the observed targets, one per example (thesis §3.1.5, §3.2.3).
	// It is not the Fisher, nor an estimate of it. kfac-jax:
	// "fisher_empirical".
	FisherEmpirical
)

// String returns the kfac-jax name of the estimator.
func (e Estimator) String() string {
	switch e {
	case GGNExact:
		return "ggn_exact"
	case FisherExact:
		return "fisher_exact"
	case FisherGradients:
		return "fisher_gradients"
	case FisherEmpirical:
		return "fisher_empirical"
	}
	return fmt.Sprintf("Estimator(%d)", int(e))
}

// Backprop fills the per-layer records of an nn.Network with the curvature
// vectors of an Estimator. The zero value selects GGNExact at the logits
// split. Backprop keeps buffers between calls and is not safe for
// concurrent use.
type Backprop struct {
	// Estimator selects the vectors; default GGNExact.
	Estimator Estimator
	// Split is where GGNExact cuts the loss from the network (nn.Split);
	// default nn.SplitLogits, the matching-loss split (Schraudolph 2002).
	// The Fisher estimators do not depend on it.
	Split nn.Split
	// Samples is the number of targets drawn per example by
	// FisherGradients; zero means 1, as in Martens & Grosse (2015).
	Samples int
	// Rand is the source of the sampled targets of FisherGradients, which
	// requires it.
	Rand *rand.Rand

	v, g, ys mat.Dense
	idx      []int
}

// Fill runs net.Forward(X) and net.Backward(loss, Y), which fill every
// record's Input, Grad, GradW and GradB, then the vector backward pass of
// the estimator, which fills Back and BackScale so that
//
//	BackScale · Backᵀ Back = (1/n) Σ_i J_{a_i}ᵀ D_i J_{a_i}   (exact or in expectation)
//
// at every layer, and BackExamples with the example of each row of Back
// (secondorder.Layer.BackExample). Y may be nil for FisherExact and
// FisherGradients, which do not use the targets; Backward is then skipped
// and Grad not filled.
//
// Back has n·k rows for GGNExact and FisherExact (k outputs, rows
// i·k … i·k+k−1 of example i), n·Samples for FisherGradients (row j·n+i is
// sample j of example i, BackScale = 1/(n·Samples)) and n for
// FisherEmpirical (a copy of Grad, BackScale = 1/n). BackExamples is owned
// by net or by b and valid until the next call.
func (b *Backprop) Fill(net *nn.Network, loss nn.Loss, X, Y mat.Matrix) {
	if net == nil || loss == nil {
		panic("network: Backprop.Fill: nil network or loss")
	}
	net.Forward(X)
	if Y != nil {
		net.Backward(loss, Y)
	} else if b.Estimator == GGNExact || b.Estimator == FisherEmpirical {
		panic(fmt.Sprintf("network: Backprop.Fill: %v needs targets", b.Estimator))
	}
	switch b.Estimator {
	case GGNExact:
		net.BackwardGN(loss, Y, b.Split)
	case FisherExact:
		net.BackwardFisher(loss)
	case FisherEmpirical:
		recs := net.Records()
		net.BackwardVectors(recs[len(recs)-1].Grad, nil)
	case FisherGradients:
		b.sample(net, loss)
	default:
		panic(fmt.Sprintf("network: Backprop.Fill: unknown %v", b.Estimator))
	}
}

// sample fills Back with Samples gradients at sampled targets per example.
// With several samples, row j·n+i is sample j of example i: BackwardVectors
// stores b.idx in the records' BackExamples.
func (b *Backprop) sample(net *nn.Network, loss nn.Loss) {
	if b.Rand == nil {
		panic("network: Backprop.Fill: fisher_gradients needs Rand")
	}
	s := b.Samples
	if s < 0 {
		panic(fmt.Sprintf("network: Backprop.Fill: Samples = %d, want ≥ 0", s))
	}
	if s <= 1 {
		net.BackwardMC(loss, b.Rand)
		return
	}
	o := net.Output()
	n, k := o.Dims()
	resize(&b.v, n*s, k)
	resize(&b.g, n, k)
	resize(&b.ys, n, k)
	if cap(b.idx) < n*s {
		b.idx = make([]int, n*s)
	}
	b.idx = b.idx[:n*s]
	for j := 0; j < s; j++ {
		loss.Sample(&b.ys, o, b.Rand)
		loss.GradA(&b.g, o, &b.ys)
		for i := 0; i < n; i++ {
			copy(matutil.Row(&b.v, j*n+i), matutil.Row(&b.g, i))
			b.idx[j*n+i] = i
		}
	}
	net.BackwardVectors(&b.v, b.idx)
	scale := 1 / float64(n*s)
	for _, r := range net.Records() {
		r.BackScale = scale
	}
}

// resize makes m an r×c matrix, reusing its storage when the shape is kept.
func resize(m *mat.Dense, r, c int) {
	if mr, mc := m.Dims(); !m.IsEmpty() && mr == r && mc == c {
		return
	}
	m.Reset()
	m.ReuseAs(r, c)
}
