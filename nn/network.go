package nn

import (
	"fmt"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// Network is a feed-forward stack of affine layers, each followed by an
// activation (thesis §2.1.2):
//
//	h_0 = x,   a_l = W_l h_l + b_l,   h_{l+1} = φ_l(a_l),   f = h_L.
//
// Layers may normalise their affine outputs (SetNorm) and whiten their
// inputs (SetWhitened); the network is then in training mode or evaluation
// mode (SetTraining).
//
// It owns the buffers of the forward and backward passes and reuses them:
// matrices it returns are valid until the next call that rewrites them.
// A Network is not safe for concurrent use.
type Network struct {
	sizes   []int
	layers  []*Affine
	records []*secondorder.Layer

	training bool // training mode (see SetTraining)

	n   int        // batch size of the last Forward, 0 before
	x   *mat.Dense // copy of the input batch, layer 0's Input
	y   *mat.Dense // copy of targets given as a non-*mat.Dense matrix
	ys  *mat.Dense // sampled targets of BackwardMC
	idx []int      // example index of the rows of BackwardGN/BackwardFisher
}

// New returns a network with layer sizes sizes[0] → sizes[1] → … →
// sizes[L], where layer l maps sizes[l] inputs to sizes[l+1] outputs and is
// followed by acts[l]; len(acts) must be len(sizes)−1. Softmax is allowed
// only as the last activation. Weights and biases are zero: call Init.
func New(sizes []int, acts []Activation) *Network {
	if len(sizes) < 2 {
		panic(fmt.Sprintf("nn: New: need at least 2 sizes, have %d", len(sizes)))
	}
	if len(acts) != len(sizes)-1 {
		panic(fmt.Sprintf("nn: New: %d activations for %d layers", len(acts), len(sizes)-1))
	}
	for l, s := range sizes {
		if s <= 0 {
			panic(fmt.Sprintf("nn: New: size %d is %d, must be positive", l, s))
		}
	}
	net := &Network{sizes: append([]int(nil), sizes...), training: true, x: &mat.Dense{}, y: &mat.Dense{}, ys: &mat.Dense{}}
	for l, act := range acts {
		if act == nil {
			panic(fmt.Sprintf("nn: New: activation %d is nil", l))
		}
		if _, ok := act.(Softmax); ok && l != len(acts)-1 {
			panic(fmt.Sprintf("nn: New: softmax is allowed only on the output layer, found on layer %d of %d", l, len(acts)))
		}
		ly := NewAffine(sizes[l], sizes[l+1], act)
		if l == 0 {
			ly.in = net.x
		} else {
			ly.in = net.layers[l-1].h
		}
		ly.rec.Input = ly.in
		net.layers = append(net.layers, ly)
		net.records = append(net.records, &ly.rec)
	}
	return net
}

// NewAutoencoder returns the deep autoencoder of Hinton & Salakhutdinov
// (2006), the benchmark of thesis §2.5 (trained there with the quadratic
// loss) and of Martens (2010). For sizes such as
// 784-1000-500-250-30-250-500-1000-784, every layer is followed by a Sigmoid
// except the one that produces the smallest hidden layer, the code, which is
// linear (Identity); the output layer is Sigmoid. With several smallest
// hidden layers the first is the code. Weights and biases are zero: call
// Init.
func NewAutoencoder(sizes []int) *Network {
	if len(sizes) < 2 {
		panic(fmt.Sprintf("nn: NewAutoencoder: need at least 2 sizes, have %d", len(sizes)))
	}
	acts := make([]Activation, len(sizes)-1)
	code := -1
	for l := 1; l < len(sizes)-1; l++ {
		if code < 0 || sizes[l] < sizes[code] {
			code = l
		}
	}
	for l := range acts {
		acts[l] = Sigmoid{}
		if l+1 == code {
			acts[l] = Identity{}
		}
	}
	return New(sizes, acts)
}

// Sizes returns a copy of the layer sizes.
func (net *Network) Sizes() []int { return append([]int(nil), net.sizes...) }

// NumLayers returns the number of affine layers L.
func (net *Network) NumLayers() int { return len(net.layers) }

// Layer returns affine layer l, 0 ≤ l < L.
func (net *Network) Layer(l int) *Affine { return net.layers[l] }

// Records returns the per-layer records in layer order. The slice and the
// records are owned by the network.
func (net *Network) Records() []*secondorder.Layer { return net.records }

// BatchSize returns the number of examples of the last Forward, 0 before
// the first.
func (net *Network) BatchSize() int { return net.n }

// Output returns the output layer's activation, the inputs of that
// activation (the logits: the pre-activations, normalised if the output
// layer is) and the outputs of the last Forward.
func (net *Network) Output() Output {
	last := net.layers[len(net.layers)-1]
	return Output{Act: last.act, A: last.z, F: last.h}
}

// Plain reports whether every layer is a plain affine layer, without
// normalisation or whitening: then a_l = W_l h_l + b_l with h_l the
// previous layer's outputs, as code that recomputes the network from its
// weights and activations (such as package curvature's network-level
// matrices) assumes.
func (net *Network) Plain() bool {
	for _, ly := range net.layers {
		if ly.norm != nil || ly.wh != nil {
			return false
		}
	}
	return true
}

// invalidate forgets the last forward pass, whose buffers no longer match
// the network's layers.
func (net *Network) invalidate() {
	net.n = 0
	for _, ly := range net.layers {
		ly.rec.Back = nil
		ly.rec.BackScale = 0
		ly.rec.BackExamples = nil
	}
}

// Forward computes the network's outputs f for a batch X (n × sizes[0], one
// example per row) and returns them (n × sizes[L]) in a buffer owned by the
// network, valid until the next Forward. It copies X into layer 0's record
// Input and leaves in every layer's record Input = h_l, the activation that
// entered the layer (its whitened version U(h_l − μ) for a whitened layer),
// and in every layer the pre-activations A_l; the output layer's activation
// inputs are the logits (see Output). It clears the records' Back.
//
// In training mode, normalised layers use the batch's statistics, which
// needs n ≥ 2, and update their running averages (see SetTraining).
//
// Cost: one n × n_in × n_out gemm per layer, plus one n × n_in × n_in gemm
// per whitened layer. At a fixed batch size it does not allocate.
func (net *Network) Forward(X mat.Matrix) *mat.Dense {
	net.forward(X, net.training)
	return net.layers[len(net.layers)-1].h
}

// forward is Forward, with the running averages of normalised layers
// updated only when update is set.
func (net *Network) forward(X mat.Matrix, update bool) {
	r, c := X.Dims()
	if c != net.sizes[0] {
		panic(fmt.Sprintf("nn: Forward: input is %d×%d, network wants n×%d", r, c, net.sizes[0]))
	}
	if r == 0 {
		panic("nn: Forward: empty batch")
	}
	if r == 1 && net.training {
		for l, ly := range net.layers {
			if ly.norm != nil {
				panic(fmt.Sprintf("nn: Forward: layer %d: batch normalisation in training mode needs at least 2 examples, have 1", l))
			}
		}
	}
	if r != net.n {
		resize(net.x, r, c)
		for _, l := range net.layers {
			l.resize(r)
		}
		net.n = r
	}
	if X != mat.Matrix(net.x) {
		net.x.Copy(X)
	}
	for _, l := range net.layers {
		l.forward(net.training, update)
		l.rec.Grad, l.rec.GradW, l.rec.GradB = nil, nil, nil // until Backward
		l.rec.Risk = 0
		l.rec.Back = nil
		l.rec.BackScale = 0
		l.rec.BackExamples = nil
	}
}

// Risk runs Forward on X and returns the loss averaged over the batch,
// R = (1/n) Σ_i l(f(x_i), y_i).
func (net *Network) Risk(loss Loss, X, Y mat.Matrix) float64 {
	net.Forward(X)
	net.checkLoss("Risk", loss)
	return loss.Value(net.Output(), net.targets("Risk", Y))
}

// targets returns Y as a *mat.Dense of shape n × sizes[L], copying it into
// a network buffer when it is another kind of matrix.
func (net *Network) targets(op string, Y mat.Matrix) *mat.Dense {
	k := net.sizes[len(net.sizes)-1]
	checkShape(op, "targets", Y, net.n, k)
	if d, ok := Y.(*mat.Dense); ok {
		return d
	}
	resize(net.y, net.n, k)
	net.y.Copy(Y)
	return net.y
}

func (net *Network) checkForward(op string) {
	if net.n == 0 {
		panic(fmt.Sprintf("nn: %s called before Forward", op))
	}
}

func (net *Network) checkLoss(op string, loss Loss) {
	if err := loss.Check(net.layers[len(net.layers)-1].act); err != nil {
		panic(fmt.Sprintf("nn: %s: %s", op, strings.TrimPrefix(err.Error(), "nn: ")))
	}
}
