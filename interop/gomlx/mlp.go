package gomlx

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// Activation is the activation of the hidden layers of an MLP.
type Activation int

const (
	// Tanh is the hyperbolic tangent.
	Tanh Activation = iota
	// ReLU is max(a, 0).
	ReLU
)

// String returns "tanh" or "relu".
func (a Activation) String() string {
	switch a {
	case Tanh:
		return "tanh"
	case ReLU:
		return "relu"
	}
	return fmt.Sprintf("Activation(%d)", int(a))
}

// apply builds the activation's node.
func (a Activation) apply(x *graph.Node) *graph.Node {
	if a == ReLU {
		return activations.Relu(x)
	}
	return graph.Tanh(x)
}

// MLP is a multilayer perceptron Sizes[0] → Sizes[1] → … → Sizes[L] with
// Act on the hidden layers and softmax cross-entropy on the logits
// (targets one-hot), whose forward and backward passes are GoMLX graphs and
// whose parameters W[l] (Sizes[l+1] × Sizes[l]) and B[l] (Sizes[l+1]) are
// gonum matrices, updated in place by the optimizers of secondorder through
// the records of Records.
//
// An MLP is not safe for concurrent use.
type MLP struct {
	Sizes []int
	Act   Activation
	W     []*mat.Dense
	B     []*mat.VecDense

	backend backends.Backend
	records *graph.Exec // x, y, sampled y, W…, B… → risk, Input…, Grad…, Back…, GradW…, GradB…
	logits  *graph.Exec // x, W…, B… → logits
	recs    []*secondorder.Layer
	probs   []float64
}

// NewMLP returns an MLP of the given sizes on backend, with weights drawn
// from rng, N(0, g/n_in) with g = 2 for ReLU and 1 for tanh (He and LeCun
// initialisations), and zero biases. It panics for fewer than two sizes or
// a size below 1.
func NewMLP(backend backends.Backend, sizes []int, act Activation, rng *rand.Rand) *MLP {
	if len(sizes) < 2 {
		panic(fmt.Sprintf("gomlx: NewMLP: %d sizes, want at least 2", len(sizes)))
	}
	for _, s := range sizes {
		if s < 1 {
			panic(fmt.Sprintf("gomlx: NewMLP: size %d, want ≥ 1", s))
		}
	}
	m := &MLP{Sizes: append([]int(nil), sizes...), Act: act, backend: backend}
	gain := 1.0
	if act == ReLU {
		gain = 2
	}
	for l := 0; l+1 < len(sizes); l++ {
		in, out := sizes[l], sizes[l+1]
		w := mat.NewDense(out, in, nil)
		std := math.Sqrt(gain / float64(in))
		for i := range out {
			for j := range in {
				w.Set(i, j, std*rng.NormFloat64())
			}
		}
		m.W = append(m.W, w)
		m.B = append(m.B, mat.NewVecDense(out, nil))
		m.recs = append(m.recs, &secondorder.Layer{W: w, B: m.B[l]})
	}
	m.records = graph.MustNewExecAny(backend, m.recordsGraph)
	m.logits = graph.MustNewExecAny(backend, m.logitsGraph)
	return m
}

// layers returns the number of affine layers.
func (m *MLP) layers() int { return len(m.Sizes) - 1 }

// forward builds the forward pass from x with the parameters ws, bs and
// returns the inputs h and pre-activations a of every affine layer (the
// last a are the logits).
func (m *MLP) forward(x *graph.Node, ws, bs []*graph.Node) (hs, as []*graph.Node) {
	n := x.Shape().Dimensions[0]
	h := x
	for l := range m.layers() {
		hs = append(hs, h)
		// a = h Wᵀ + 1 bᵀ, one example per row.
		a := graph.Add(graph.Einsum("ij,kj->ik", h, ws[l]), graph.BroadcastPrefix(bs[l], n))
		as = append(as, a)
		if l+1 < m.layers() {
			h = m.Act.apply(a)
		}
	}
	return hs, as
}

// recordsGraph is the graph of Records.
func (m *MLP) recordsGraph(in []*graph.Node) []*graph.Node {
	L := m.layers()
	x, y, ys := in[0], in[1], in[2]
	ws, bs := in[3:3+L], in[3+L:3+2*L]
	n := x.Shape().Dimensions[0]
	hs, as := m.forward(x, ws, bs)
	logp := graph.LogSoftmax(as[L-1], -1)
	// Summed losses at the targets and at the sampled targets: their
	// gradients with respect to the a nodes are per-example gradients.
	sum := graph.Neg(graph.ReduceAllSum(graph.Mul(y, logp)))
	sampled := graph.Neg(graph.ReduceAllSum(graph.Mul(ys, logp)))
	risk := graph.DivScalar(sum, float64(n))
	grads := graph.Gradient(sum, as...)
	backs := graph.Gradient(sampled, as...)
	params := graph.Gradient(risk, append(append([]*graph.Node(nil), ws...), bs...)...)
	out := []*graph.Node{risk}
	out = append(out, hs...)
	out = append(out, grads...)
	out = append(out, backs...)
	return append(out, params...)
}

// logitsGraph is the graph of Logits.
func (m *MLP) logitsGraph(in []*graph.Node) []*graph.Node {
	L := m.layers()
	_, as := m.forward(in[0], in[1:1+L], in[1+L:1+2*L])
	return []*graph.Node{as[L-1]}
}

// Records runs the forward and backward passes of the minibatch x
// (n × Sizes[0]) with one-hot targets y (n × Sizes[L]) in GoMLX and returns
// one record per affine layer: W and B (the MLP's own matrices), Input,
// Grad (per example, of the summed loss), GradW and GradB (of the mean
// loss), Risk, and, when rng is not nil, Back: the per-example gradients at
// targets drawn from the model's softmax with rng, the Monte-Carlo Fisher
// vectors that K-FAC reads (BackScale zero, 1/n). With a nil rng, Back is
// nil. The records and their matrices are owned by m and valid until the
// next call. It panics for inputs of the wrong width and returns GoMLX's
// errors.
func (m *MLP) Records(x, y *mat.Dense, rng *rand.Rand) ([]*secondorder.Layer, error) {
	L := m.layers()
	n, c := x.Dims()
	if ny, k := y.Dims(); c != m.Sizes[0] || ny != n || k != m.Sizes[L] {
		panic(fmt.Sprintf("gomlx: MLP.Records: x is %d×%d and y %d×%d, want n×%d and n×%d", n, c, ny, k, m.Sizes[0], m.Sizes[L]))
	}
	ys := mat.NewDense(n, m.Sizes[L], nil)
	if rng != nil {
		logits, err := m.Logits(x)
		if err != nil {
			return nil, err
		}
		m.sample(ys, logits, rng)
	}
	args := m.paramArgs(tensorOf(x), tensorOf(y), tensorOf(ys))
	outs, err := m.records.Exec(args...)
	finalize(args)
	if err != nil {
		return nil, fmt.Errorf("gomlx: MLP.Records: %w", err)
	}
	defer finalizeTensors(outs)
	risk, err := scalar(outs[0])
	if err != nil {
		return nil, err
	}
	for l, r := range m.recs {
		in, out := m.Sizes[l], m.Sizes[l+1]
		r.Risk = risk
		r.BackScale = 0
		r.BackExamples = nil
		if r.Input, err = fill(r.Input, outs[1+l], n, in); err != nil {
			return nil, err
		}
		if r.Grad, err = fill(r.Grad, outs[1+L+l], n, out); err != nil {
			return nil, err
		}
		if rng != nil {
			if r.Back, err = fill(r.Back, outs[1+2*L+l], n, out); err != nil {
				return nil, err
			}
		} else {
			r.Back = nil
		}
		if r.GradW, err = fill(r.GradW, outs[1+3*L+l], out, in); err != nil {
			return nil, err
		}
		gb, err := fill(nil, outs[1+4*L+l], 1, out)
		if err != nil {
			return nil, err
		}
		if r.GradB == nil {
			r.GradB = mat.NewVecDense(out, nil)
		}
		r.GradB.CopyVec(gb.RowView(0))
	}
	return m.recs, nil
}

// Logits returns the logits of the rows of x (n × Sizes[L]).
func (m *MLP) Logits(x *mat.Dense) (*mat.Dense, error) {
	L := m.layers()
	n, _ := x.Dims()
	args := m.paramArgs(tensorOf(x))
	outs, err := m.logits.Exec(args...)
	finalize(args)
	if err != nil {
		return nil, fmt.Errorf("gomlx: MLP.Logits: %w", err)
	}
	defer finalizeTensors(outs)
	return fill(nil, outs[0], n, m.Sizes[L])
}

// paramArgs returns the arguments of an Exec: the tensors given, then the
// weights W… and the biases B… as new tensors.
func (m *MLP) paramArgs(data ...*tensors.Tensor) []any {
	args := make([]any, 0, len(data)+2*len(m.W))
	for _, t := range data {
		args = append(args, t)
	}
	for _, w := range m.W {
		args = append(args, tensorOf(w))
	}
	for _, b := range m.B {
		args = append(args, tensors.FromFlatDataAndDimensions(append([]float64(nil), b.RawVector().Data[:b.Len()]...), b.Len()))
	}
	return args
}

// sample writes into ys one one-hot row per example, drawn from the
// softmax of its logits.
func (m *MLP) sample(ys, logits *mat.Dense, rng *rand.Rand) {
	n, k := logits.Dims()
	if cap(m.probs) < k {
		m.probs = make([]float64, k)
	}
	p := m.probs[:k]
	for i := range n {
		row := logits.RawRowView(i)
		mx := row[0]
		for _, v := range row {
			mx = max(mx, v)
		}
		s := 0.0
		for j, v := range row {
			p[j] = math.Exp(v - mx)
			s += p[j]
		}
		u := rng.Float64() * s
		j := 0
		for ; j+1 < k && u >= p[j]; j++ {
			u -= p[j]
		}
		ys.Set(i, j, 1)
	}
}

// tensorOf copies a matrix into a new float64 tensor of its shape.
func tensorOf(a *mat.Dense) *tensors.Tensor {
	r, c := a.Dims()
	raw := a.RawMatrix()
	data := make([]float64, r*c)
	for i := range r {
		copy(data[i*c:(i+1)*c], raw.Data[i*raw.Stride:i*raw.Stride+c])
	}
	return tensors.FromFlatDataAndDimensions(data, r, c)
}

// fill copies the float64 tensor t, of r·c values, into dst (allocated or
// resized when nil or of another shape) and returns it.
func fill(dst *mat.Dense, t *tensors.Tensor, r, c int) (*mat.Dense, error) {
	if dst == nil {
		dst = mat.NewDense(r, c, nil)
	} else if rr, cc := dst.Dims(); rr != r || cc != c {
		dst.ReuseAs(r, c)
	}
	var size int
	err := tensors.ConstFlatData(t, func(flat []float64) {
		size = len(flat)
		if size == r*c {
			raw := dst.RawMatrix()
			for i := range r {
				copy(raw.Data[i*raw.Stride:i*raw.Stride+c], flat[i*c:(i+1)*c])
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("gomlx: reading a result: %w", err)
	}
	if size != r*c {
		return nil, fmt.Errorf("gomlx: a result has %d values, want %d×%d", size, r, c)
	}
	return dst, nil
}

// scalar returns the value of a scalar float64 tensor.
func scalar(t *tensors.Tensor) (float64, error) {
	var v float64
	var size int
	err := tensors.ConstFlatData(t, func(flat []float64) {
		size = len(flat)
		if size == 1 {
			v = flat[0]
		}
	})
	if err != nil || size != 1 {
		return 0, fmt.Errorf("gomlx: reading the risk: %d values, %v", size, err)
	}
	return v, nil
}

// finalize frees the tensors among args.
func finalize(args []any) {
	for _, a := range args {
		if t, ok := a.(*tensors.Tensor); ok {
			t.FinalizeAll()
		}
	}
}

// finalizeTensors frees ts.
func finalizeTensors(ts []*tensors.Tensor) {
	for _, t := range ts {
		t.FinalizeAll()
	}
}
