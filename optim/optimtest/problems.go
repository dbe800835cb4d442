// Package optimtest holds test problems for the optimizers of package optim,
// in the manner of gonum's optimize/functions: small networks on seeded
// synthetic data, each with a fixed minibatch schedule, that fill the
// per-layer records (secondorder.Layer) an optimizer reads. Every optimizer
// is run over every problem by one table in optim's tests
// (optim/harness_test.go); other code can use the problems to check an
// optimizer of its own.
//
// A training loop over a problem reads
//
//	p := optimtest.Regression(1)
//	for range 200 {
//		p.Next()                      // next minibatch: Input, Grad, GradW, GradB and Back
//		if err := opt.Step(p.Records()); err != nil { ... }
//	}
//	fmt.Println(p.Risk())             // risk on the whole training set
//
// A problem is built from its seed alone: the data, the initial parameters,
// the minibatch schedule and the Monte-Carlo samples of Back are drawn from
// separate streams of that seed, so that the same seed gives bit for bit the
// same records at every Next. The problems are small (at most a few hundred
// examples and 500 parameters) so that a step takes well under a
// millisecond, and every layer is small enough for optim.Newton's exact
// blocks.
//
// This package imports nn and datasets; package optim itself never does
// (only its tests import optimtest).
package optimtest

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
)

// Sizes shared by the problems.
const (
	// Examples is the number of training examples of every problem.
	Examples = 256
	// BatchSize is the minibatch size of every problem.
	BatchSize = 32
)

// Streams of a seed (the second word of rand.NewPCG), one per use, so that
// changing how much one part draws does not change the others.
const (
	streamData uint64 = iota + 1
	streamInit
	streamSchedule
	streamMC
)

// Task is a small network on a fixed training set with a fixed, seeded
// schedule of minibatches, whose records are filled by Next. Build one with
// Regression, Classifier or Autoencoder (All gives every problem).
//
// Risk and Loss evaluate copies of the network that hold the current
// parameters, so that they leave the records of the current minibatch
// intact: an optimizer may call Loss from inside Step (as optim.Problem.Loss)
// and read the records afterwards.
//
// A Task is not safe for concurrent use.
type Task struct {
	name string
	loss nn.Loss
	net  *nn.Network // the trained network: its records are the problem's
	full *nn.Network // evaluation copy for the training set (Risk)
	part *nn.Network // evaluation copy for the current minibatch (Loss)
	x, y *mat.Dense  // training set

	batch    int
	sched    *datasets.Batches
	mc       *rand.Rand // Monte-Carlo targets of BackwardMC
	xb, yb   *mat.Dense // current minibatch
	steps    int
	theta    []float64 // parameter buffer of sync
	baseline float64
	gn       *network.Operator // GNVec's operator, built at gnAt
	gnAt     int
}

// newTask builds the problem: the network of the given sizes and
// activations, initialized with init from the seed's init stream, a
// schedule of minibatches of size batch over the rows of x and y.
func newTask(name string, seed uint64, sizes []int, acts []nn.Activation, init nn.Initializer, loss nn.Loss, x, y *mat.Dense, batch int) *Task {
	build := func() *nn.Network {
		if acts == nil {
			return nn.NewAutoencoder(sizes)
		}
		return nn.New(sizes, acts)
	}
	p := &Task{
		name:  name,
		loss:  loss,
		net:   build(),
		full:  build(),
		part:  build(),
		x:     x,
		y:     y,
		batch: batch,
		sched: datasets.NewBatches(x.RawMatrix().Rows, rand.New(rand.NewPCG(seed, streamSchedule)), datasets.BatchConfig{Size: batch}),
		mc:    rand.New(rand.NewPCG(seed, streamMC)),
	}
	p.net.Init(init, rand.New(rand.NewPCG(seed, streamInit)))
	p.baseline = baseline(loss, y)
	return p
}

// baseline returns the training-set risk of the best constant output: the
// mean target for the quadratic loss (Σ_k of the targets' variances), the
// class frequencies for the cross-entropy (their entropy).
func baseline(loss nn.Loss, y *mat.Dense) float64 {
	n, k := y.Dims()
	mean := make([]float64, k)
	for i := range n {
		for j, v := range y.RawRowView(i) {
			mean[j] += v / float64(n)
		}
	}
	r := 0.0
	switch loss.(type) {
	case nn.CrossEntropy:
		for _, q := range mean {
			if q > 0 {
				r -= q * math.Log(q)
			}
		}
	case nn.Quadratic:
		for i := range n {
			for j, v := range y.RawRowView(i) {
				r += (v - mean[j]) * (v - mean[j]) / float64(n)
			}
		}
	default:
		panic(fmt.Sprintf("optimtest: no baseline for the loss %s", loss.Name()))
	}
	return r
}

// Regression returns a regression problem: a 4-16-3 network, tanh hidden
// units and identity outputs, fitted with the quadratic loss ‖f − y‖² to
// the smooth nonlinear targets
//
//	y_k = sin(a_kᵀx) + ½ cos(b_kᵀx),   k = 1, 2, 3,
//
// of Examples inputs x ~ N(0, I₄), with a_k, b_k drawn once from
// N(0, (1.5²/4) I₄) (so that a_kᵀx has a standard deviation of about 1.5),
// and no noise. Initialization: Glorot; minibatches of BatchSize, a new order each
// epoch. Its name is "Regression". With seed 1 the initial risk is 3.45 and
// the baseline (the best constant output) 1.67.
func Regression(seed uint64) *Task { return regression(seed, Examples, BatchSize) }

// regression is Regression with n examples and minibatches of size batch.
func regression(seed uint64, n, batch int) *Task {
	const d, hidden, k = 4, 16, 3
	rng := rand.New(rand.NewPCG(seed, streamData))
	x := normal(rng, n, d, 1)
	scale := 1.5 / math.Sqrt(d)
	a, b := normal(rng, k, d, scale), normal(rng, k, d, scale)
	ax, bx := mat.NewDense(n, k, nil), mat.NewDense(n, k, nil)
	ax.Mul(x, a.T())
	bx.Mul(x, b.T())
	y := mat.NewDense(n, k, nil)
	y.Apply(func(i, j int, _ float64) float64 {
		return math.Sin(ax.At(i, j)) + 0.5*math.Cos(bx.At(i, j))
	}, y)
	return newTask("Regression", seed, []int{d, hidden, k},
		[]nn.Activation{nn.Tanh{}, nn.Identity{}}, nn.Glorot{}, nn.Quadratic{}, x, y, batch)
}

// Classifier returns a classification problem: a 10-32-4 network, hidden
// activation hidden and softmax outputs, trained with the multiclass
// cross-entropy on Examples points of 4 classes in 10 dimensions,
// datasets.Blobs with centers of standard deviation 0.7 per coordinate
// (about 3.1 apart) and unit noise: separable for the most part, with some
// overlap, so that the risk cannot reach zero quickly. Targets are one-hot.
// Initialization: He for ReLU hidden units, Glorot otherwise; minibatches
// of BatchSize, a new order each epoch. Its name is "Classifier-" followed
// by the activation's name, e.g. "Classifier-relu". The classes are
// balanced, so the baseline is log 4 ≈ 1.39; with seed 1 the initial risk is
// 2.59 with ReLU and 2.04 with tanh hidden units.
func Classifier(seed uint64, hidden nn.Activation) *Task {
	return classifier(seed, hidden, Examples, BatchSize)
}

// classifier is Classifier with n examples and minibatches of size batch.
func classifier(seed uint64, hidden nn.Activation, n, batch int) *Task {
	const d, width, classes = 10, 32, 4
	rng := rand.New(rand.NewPCG(seed, streamData))
	x, labels, _ := datasets.Blobs(rng, n, d, classes, 0.7, 1)
	var init nn.Initializer = nn.Glorot{}
	if _, ok := hidden.(nn.ReLU); ok {
		init = nn.He{}
	}
	return newTask("Classifier-"+hidden.Name(), seed, []int{d, width, classes},
		[]nn.Activation{hidden, nn.Softmax{}}, init, nn.CrossEntropy{}, x, datasets.OneHot(labels, classes), batch)
}

// Autoencoder returns a small version of the deep autoencoder benchmark
// (thesis §2.5): a 16-8-3-8-16 network, sigmoid units except the linear
// 3-unit code layer (nn.NewAutoencoder), trained with the quadratic loss
// ‖f − x‖² to reconstruct Examples binary-ish images of 16 pixels in (0, 1)
// of rank 3 (datasets.LowRankImages), which the network can reconstruct
// almost exactly. Initialization: Glorot with α = 8 (Glorot & Bengio's
// four-fold variance for sigmoid units); minibatches of BatchSize, a new
// order each epoch. Its name is "Autoencoder". With seed 1 the initial risk
// is 3.30 and the baseline (each pixel's mean) 2.46.
func Autoencoder(seed uint64) *Task { return autoencoder(seed, Examples, BatchSize) }

// autoencoder is Autoencoder with n examples and minibatches of size batch.
func autoencoder(seed uint64, n, batch int) *Task {
	const d, rank = 16, 3
	rng := rand.New(rand.NewPCG(seed, streamData))
	x := datasets.LowRankImages(rng, n, d, rank)
	return newTask("Autoencoder", seed, []int{d, 8, rank, 8, d}, nil,
		nn.Glorot{Alpha: 8}, nn.Quadratic{}, x, x, batch)
}

// All returns every problem for the seed: Regression, Classifier with ReLU
// and with tanh hidden units, and Autoencoder, in that order.
func All(seed uint64) []*Task {
	return []*Task{
		Regression(seed),
		Classifier(seed, nn.ReLU{}),
		Classifier(seed, nn.Tanh{}),
		Autoencoder(seed),
	}
}

// Baseline returns the training-set risk of the best constant output (the
// mean target for the quadratic loss, the class frequencies for the
// cross-entropy), the risk at which a run that only learns the output
// biases stalls. A training run that makes real progress goes well below
// it.
func (p *Task) Baseline() float64 { return p.baseline }

// Name returns the problem's name, usable as a subtest name.
func (p *Task) Name() string { return p.name }

// String returns the problem's name.
func (p *Task) String() string { return p.name }

// BatchSize returns the number of examples of each minibatch.
func (p *Task) BatchSize() int { return p.batch }

// Len returns the number of training examples.
func (p *Task) Len() int { r, _ := p.x.Dims(); return r }

// Steps returns the number of calls of Next so far.
func (p *Task) Steps() int { return p.steps }

// Network returns the trained network, whose records Records returns, for
// callers that need more than the records (exact curvature products, say).
// Running it forward rewrites the records.
func (p *Task) Network() *nn.Network { return p.net }

// LossFunc returns the loss the problem trains with.
func (p *Task) LossFunc() nn.Loss { return p.loss }

// Data returns the training set, inputs and targets, one example per row.
// The matrices are owned by the problem and must not be modified.
func (p *Task) Data() (x, y *mat.Dense) { return p.x, p.y }

// Batch returns the inputs and targets of the current minibatch (nil before
// the first Next), owned by the problem and rewritten by Next.
func (p *Task) Batch() (x, y *mat.Dense) { return p.xb, p.yb }

// Records returns the per-layer records of the network, in layer order,
// owned by the problem. After Next they hold the current minibatch.
func (p *Task) Records() []*secondorder.Layer { return p.net.Records() }

// Next advances to the next minibatch of the schedule and fills every
// record for it at the current parameters: Forward (Input), Backward (Grad,
// GradW, GradB) and the Monte-Carlo Fisher backward pass,
// nn.Network.BackwardMC with the problem's seeded generator (Back, one
// sampled-target gradient per example, BackScale 1/n), so that
// curvature-based optimizers (optim.KFAC, optim.Newton) have what they
// need. At a fixed batch size it does not allocate.
func (p *Task) Next() {
	p.sched.Next() // the schedule runs for ever
	p.xb = p.sched.Rows(p.xb, p.x)
	p.yb = p.sched.Rows(p.yb, p.y)
	p.net.Forward(p.xb)
	p.net.Backward(p.loss, p.yb)
	p.net.BackwardMC(p.loss, p.mc)
	p.steps++
}

// Risk returns the risk, the mean loss, on the whole training set at the
// current parameters. It leaves the records unchanged.
func (p *Task) Risk() float64 {
	p.sync(p.full)
	return p.full.Risk(p.loss, p.x, p.y)
}

// Loss returns the risk on the current minibatch at the current parameters,
// the closure of optim.Problem.Loss (set Problem.Loss = p.Loss). It leaves
// the records unchanged, and returns an error before the first Next.
func (p *Task) Loss() (float64, error) {
	if p.xb == nil {
		return 0, fmt.Errorf("optimtest: %s: Loss called before Next", p.name)
	}
	p.sync(p.part)
	return p.part.Risk(p.loss, p.xb, p.yb), nil
}

// GNVec writes into dst the products of the exact Gauss–Newton matrix of
// the current minibatch (network.NewGaussNewtonOperator at the logits
// split) with the directions v, the closure of optim.Problem.GNVec (set
// Problem.GNVec = p.GNVec). The matrix is taken at the parameters of the
// first call after each Next, on the evaluation copy, so that the records
// are left unchanged; it returns an error before the first Next.
func (p *Task) GNVec(dst, v []secondorder.Direction) error {
	if p.xb == nil {
		return fmt.Errorf("optimtest: %s: GNVec called before Next", p.name)
	}
	if p.gn == nil || p.gnAt != p.steps {
		p.sync(p.part)
		p.gn = network.NewGaussNewtonOperator(p.part, p.loss, p.xb, p.yb, nn.GaussNewton, nn.SplitLogits)
		p.gnAt = p.steps
	}
	return p.gn.MulDirections(dst, v)
}

// sync copies the parameters of the trained network into the evaluation
// copy dst.
func (p *Task) sync(dst *nn.Network) {
	p.theta = p.net.Params(growFloats(p.theta, p.net.NumParams()))
	dst.SetParams(p.theta)
}

// NumParams returns the number of parameters, the length of Params.
func (p *Task) NumParams() int { return p.net.NumParams() }

// Params returns a new slice holding every parameter of the network (the
// layers' W and B, as nn.Network.Params lays them out): a snapshot to
// compare with ParamsChanged.
func (p *Task) Params() []float64 { return p.net.Params(nil) }

// SetParams sets every parameter from theta, laid out as in Params.
func (p *Task) SetParams(theta []float64) { p.net.SetParams(theta) }

// ParamsChanged returns the number of parameters whose current value
// differs from the snapshot theta (taken by Params) in its bits, so that a
// parameter that became NaN counts as changed and one that stayed NaN does
// not.
func (p *Task) ParamsChanged(theta []float64) int {
	p.theta = p.net.Params(growFloats(p.theta, p.net.NumParams()))
	if len(theta) != len(p.theta) {
		panic(fmt.Sprintf("optimtest: %s: ParamsChanged: snapshot has %d values, the network %d parameters", p.name, len(theta), len(p.theta)))
	}
	changed := 0
	for i, v := range p.theta {
		if math.Float64bits(v) != math.Float64bits(theta[i]) {
			changed++
		}
	}
	return changed
}

// ParamsFinite reports whether every parameter is finite.
func (p *Task) ParamsFinite() bool {
	p.theta = p.net.Params(growFloats(p.theta, p.net.NumParams()))
	for _, v := range p.theta {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// normal returns an r×c matrix of independent N(0, std²) draws.
func normal(rng *rand.Rand, r, c int, std float64) *mat.Dense {
	m := mat.NewDense(r, c, nil)
	data := m.RawMatrix().Data
	for i := range data {
		data[i] = std * rng.NormFloat64()
	}
	return m
}

// growFloats returns s resliced to length n, reallocated only when its
// capacity is too small.
func growFloats(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}
