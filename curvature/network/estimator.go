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
// gradients. Values of Estimator are safe for concurrent use.
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
	// Examples is the number m of leading examples of the batch whose
	// curvature vectors Fill computes, Martens & Grosse's (2015, §8) τ1
	// sub-batch: Back then covers examples 0 … m−1 only, with BackScale the
	// weight 1/m (1/(m·Samples) for FisherGradients) of a mean over them,
	// so that the statistics of a block cost a fraction m/n of the batch's
	// while the gradient (Grad, GradW, GradB) stays that of the whole batch.
	// The records then describe the curvature of the sub-batch X[:m]:
	// BackExamples ties every row to one of the first m examples, and
	// package curvature's K-FAC factors take Ā from the
	// Layer.BackCover() = m leading rows of Input. Zero, or a value ≥ n,
	// means every example (Fill is then unchanged, random stream
	// included); negative values panic.
	Examples int

	v, g, ys mat.Dense
	idx      []int
	// a, f, y, grad are views of the first m rows of the output layer's
	// logits, outputs, targets and Grad; yc holds a copy of the first m
	// targets when they are not a *mat.Dense.
	a, f, y, grad, yc mat.Dense
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
// FisherEmpirical (a copy of Grad, BackScale = 1/n). With 0 < Examples = m
// < n, n is replaced by m in all of these: Back holds the rows of the first
// m examples only (for FisherEmpirical the first m rows of Grad), with
// BackExamples always set and BackScale 1/m (1/(m·Samples)), so that the
// records hold the curvature of the sub-batch X[:m] (and FisherGradients
// draws its targets for those m examples only). BackExamples is owned by
// net or by b and valid until the next call.
//
// At a fixed batch size and Examples, Fill does not allocate after its
// first call unless the network's or the loss's passes do.
func (b *Backprop) Fill(net *nn.Network, loss nn.Loss, X, Y mat.Matrix) {
	if net == nil || loss == nil {
		panic("network: Backprop.Fill: nil network or loss")
	}
	if b.Examples < 0 {
		panic(fmt.Sprintf("network: Backprop.Fill: Examples = %d, want ≥ 0", b.Examples))
	}
	net.Forward(X)
	if Y != nil {
		net.Backward(loss, Y)
	} else if b.Estimator == GGNExact || b.Estimator == FisherEmpirical {
		panic(fmt.Sprintf("network: Backprop.Fill: %v needs targets", b.Estimator))
	}
	n := net.BatchSize()
	m := n
	if b.Examples > 0 && b.Examples < n {
		m = b.Examples
	}
	switch b.Estimator {
	case GGNExact:
		if m == n {
			net.BackwardGN(loss, Y, b.Split)
			return
		}
		b.exact(net, loss, nn.GaussNewton, b.Split, b.targets(Y, m), m)
	case FisherExact:
		if m == n {
			net.BackwardFisher(loss)
			return
		}
		b.exact(net, loss, nn.Fisher, nn.SplitLogits, nil, m)
	case FisherEmpirical:
		recs := net.Records()
		if m == n {
			net.BackwardVectors(recs[len(recs)-1].Grad, nil)
			return
		}
		b.setIndex(m, 1)
		net.BackwardVectors(head(&b.grad, recs[len(recs)-1].Grad, m), b.idx)
		setBackScale(net, 1/float64(m))
	case FisherGradients:
		b.sample(net, loss, m)
	default:
		panic(fmt.Sprintf("network: Backprop.Fill: unknown %v", b.Estimator))
	}
}

// exact fills Back with the rows J_aᵀ S_iᵀ (S_iᵀ S_i = D_a, loss.SqrtD with
// c and s) of the first m examples, k consecutive rows per example, as
// nn.Network.BackwardGN and BackwardFisher do for the whole batch. y holds
// the first m targets; nil (the Fisher) gives the outputs as placeholder
// targets.
func (b *Backprop) exact(net *nn.Network, loss nn.Loss, c nn.Curvature, s nn.Split, y *mat.Dense, m int) {
	sub := b.output(net, m)
	if y == nil {
		y = sub.F
	}
	_, k := sub.Dims()
	resize(&b.v, m*k, k)
	loss.SqrtD(&b.v, c, s, sub, y)
	b.setIndex(m*k, k)
	net.BackwardVectors(&b.v, b.idx)
	setBackScale(net, 1/float64(m))
}

// sample fills Back with Samples gradients at sampled targets for each of
// the first m examples. With several samples or m < n, row j·m+i is sample
// j of example i: BackwardVectors stores b.idx in the records'
// BackExamples.
func (b *Backprop) sample(net *nn.Network, loss nn.Loss, m int) {
	if b.Rand == nil {
		panic("network: Backprop.Fill: fisher_gradients needs Rand")
	}
	s := b.Samples
	if s < 0 {
		panic(fmt.Sprintf("network: Backprop.Fill: Samples = %d, want ≥ 0", s))
	}
	o := net.Output()
	n, k := o.Dims()
	if m == n && s <= 1 {
		net.BackwardMC(loss, b.Rand)
		return
	}
	s = max(s, 1)
	if m < n {
		o = b.output(net, m)
	}
	resize(&b.v, m*s, k)
	resize(&b.g, m, k)
	resize(&b.ys, m, k)
	b.index(m * s)
	for j := 0; j < s; j++ {
		loss.Sample(&b.ys, o, b.Rand)
		loss.GradA(&b.g, o, &b.ys)
		for i := 0; i < m; i++ {
			copy(matutil.Row(&b.v, j*m+i), matutil.Row(&b.g, i))
			b.idx[j*m+i] = i
		}
	}
	net.BackwardVectors(&b.v, b.idx)
	setBackScale(net, 1/float64(m*s))
}

// output returns the first m rows of net's output, as views held by b.
func (b *Backprop) output(net *nn.Network, m int) nn.Output {
	o := net.Output()
	return nn.Output{Act: o.Act, A: head(&b.a, o.A, m), F: head(&b.f, o.F, m)}
}

// targets returns the first m rows of Y: a view when Y is a *mat.Dense, a
// copy held by b otherwise.
func (b *Backprop) targets(Y mat.Matrix, m int) *mat.Dense {
	if d, ok := Y.(*mat.Dense); ok {
		return head(&b.y, d, m)
	}
	_, k := Y.Dims()
	resize(&b.yc, m, k)
	b.yc.Copy(Y) // the overlap: the first m rows
	return &b.yc
}

// index makes b.idx of length r, reusing its storage.
func (b *Backprop) index(r int) {
	if cap(b.idx) < r {
		b.idx = make([]int, r)
	}
	b.idx = b.idx[:r]
}

// setIndex sets b.idx to r entries, entry t being t/per: per consecutive
// rows for each example.
func (b *Backprop) setIndex(r, per int) {
	b.index(r)
	for t := range b.idx {
		b.idx[t] = t / per
	}
}

// setBackScale sets every record's BackScale to s, after BackwardVectors
// has set it to 1/n.
func setBackScale(net *nn.Network, s float64) {
	for _, r := range net.Records() {
		r.BackScale = s
	}
}

// head makes dst a view of the first m rows of src, sharing its storage,
// and returns it; unlike src.Slice it does not allocate.
func head(dst, src *mat.Dense, m int) *mat.Dense {
	raw := src.RawMatrix()
	raw.Data = raw.Data[:(m-1)*raw.Stride+raw.Cols]
	raw.Rows = m
	dst.SetRawMatrix(raw)
	return dst
}

// resize makes m an r×c matrix, reusing its storage when the shape is kept.
func resize(m *mat.Dense, r, c int) {
	if mr, mc := m.Dims(); !m.IsEmpty() && mr == r && mc == c {
		return
	}
	m.Reset()
	m.ReuseAs(r, c)
}
