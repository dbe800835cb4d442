package main

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// methodNames lists the values of -opt.
var methodNames = []string{"sgd", "nesterov", "rmsprop", "adam", "centered", "acp", "acp-fixed", "kfac", "nnn", "newton"}

// trainer is one optimizer with the glue it needs around a training step:
// the network it wants (normalisation, whitening), the curvature vectors it
// reads from the records, and the closures of optim.Problem.
type trainer struct {
	opt  optim.Optimizer
	desc string

	norm      nn.Norm
	whiten    bool // natural neural network: whitened layers refreshed every whitenEvery updates
	every     int
	whitenEps float64

	back      *curvature.Backprop // fills Back (K-FAC)
	statsDue  func() bool         // K-FAC: whether this update reads Back
	newton    *optim.Newton       // exact GN rows on a sub-batch
	newtonSub int
	problem   *optim.Problem // closures over the current batch

	net  *nn.Network
	loss nn.Loss
	xb   *mat.Dense // current minibatch, for the closures

	sample *mat.Dense // whitening sample
	sq     mat.Dense  // square-root factors for newton
	idx    []int
}

// orDefault returns v, or d when v is zero.
func orDefault(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

// newTrainer returns the method named by c.opt with the benchmark's
// defaults for any setting left at zero (README: how they were chosen).
func newTrainer(c config, rng *rand.Rand) (*trainer, error) {
	mom := c.momentum
	defMom := func(d float64) float64 {
		if mom < 0 {
			return d
		}
		return mom
	}
	t := &trainer{}
	switch c.opt {
	case "sgd", "nesterov":
		lr := orDefault(c.lr, 0.01)
		m := defMom(0.9)
		nest := c.nesterov || c.opt == "nesterov"
		t.opt = &optim.SGD{Rate: lr, Momentum: m, Nesterov: nest}
		t.desc = fmt.Sprintf("sgd lr=%g momentum=%g nesterov=%v", lr, m, nest)
	case "rmsprop":
		lr := orDefault(c.lr, 1e-3)
		m := defMom(0)
		t.opt = &optim.RMSProp{Rate: lr, Momentum: m}
		t.desc = fmt.Sprintf("rmsprop lr=%g momentum=%g", lr, m)
	case "adam":
		lr := orDefault(c.lr, 1e-3)
		t.opt = &optim.Adam{Rate: lr}
		t.desc = fmt.Sprintf("adam lr=%g", lr)
	case "centered":
		lr := orDefault(c.lr, 0.1)
		m := defMom(0.9)
		t.opt = &optim.Centered{Rate: lr, Momentum: m, Nesterov: c.nesterov}
		t.desc = fmt.Sprintf("centered lr=%g momentum=%g", lr, m)
	case "acp", "acp-fixed":
		lr := orDefault(c.lr, 0.1)
		m := defMom(0.9)
		damp := orDefault(c.damping, 3)
		alpha := c.alpha
		if c.opt == "acp-fixed" {
			alpha = orDefault(alpha, 1)
			lr = orDefault(c.lr, 0.3)
			damp = orDefault(c.damping, 10)
		}
		period := c.period
		if period == 0 {
			period = 20
		}
		t.opt = &optim.ACP{Rate: lr, Momentum: m, Damping: damp, Alpha: alpha, RefreshPeriod: period}
		a := "max squared gradient"
		if alpha > 0 {
			a = fmt.Sprint(alpha)
		}
		t.desc = fmt.Sprintf("acp lr=%g momentum=%g damping=%g alpha=%s period=%d", lr, m, damp, a, period)
	case "kfac":
		lr := orDefault(c.lr, 1)
		m := defMom(0)
		damp := orDefault(c.damping, 0.1)
		period := c.period
		if period == 0 {
			period = 20
		}
		k := &optim.KFAC{Rate: lr, Momentum: m, Damping: damp, InversePeriod: period}
		t.opt = k
		t.back = &curvature.Backprop{Estimator: curvature.FisherGradients, Rand: rng}
		t.statsDue = k.StatsDue
		t.desc = fmt.Sprintf("kfac lr=%g momentum=%g damping=%g (relative) inverse-period=%d fisher=monte-carlo", lr, m, damp, period)
	case "nnn":
		// Full whitening (ε near 0.1) made every learning rate tried fail on
		// this benchmark; a strongly regularised U, close to centering and
		// rescaling each layer's input, trains (README).
		lr := orDefault(c.lr, 0.1)
		m := defMom(0)
		t.opt = &optim.SGD{Rate: lr, Momentum: m}
		t.whiten = true
		t.whitenEps = orDefault(c.whitenEps, 100)
		t.every = c.period
		if t.every == 0 {
			t.every = 100
		}
		t.desc = fmt.Sprintf("nnn (whitened layers, ε=%g relative, sgd lr=%g momentum=%g, refresh every %d updates)", t.whitenEps, lr, m, t.every)
	case "newton":
		lr := orDefault(c.lr, 1)
		damp := orDefault(c.damping, 0.1)
		nw := &optim.Newton{Rate: lr, Damping: damp}
		t.opt = nw
		t.newton = nw
		t.newtonSub = 10
		t.desc = fmt.Sprintf("block-diagonal newton lr=%g damping=%g (relative), exact GN blocks on %d examples per batch", lr, damp, t.newtonSub)
	default:
		return nil, fmt.Errorf("unknown -opt %q (available: %s)", c.opt, strings.Join(methodNames, ", "))
	}
	switch c.norm {
	case "", "none":
	case "bn":
		t.norm = nn.BatchNorm
	case "meanbn":
		t.norm = nn.MeanOnlyBatchNorm
	default:
		return nil, fmt.Errorf("unknown -norm %q (want none, bn or meanbn)", c.norm)
	}
	if t.norm != nn.NoNorm && (t.back != nil || t.newton != nil || t.whiten) {
		return nil, fmt.Errorf("-norm %s cannot be combined with -opt %s: its curvature is per example, and batch normalisation couples the examples", c.norm, c.opt)
	}
	if t.norm != nn.NoNorm {
		t.desc += ", " + t.norm.String()
	}
	return t, nil
}

// build returns the network the method trains, initialised.
func (t *trainer) build(sizes []int, init nn.Initializer, loss nn.Loss, rng *rand.Rand, maxParams int) (*nn.Network, error) {
	var net *nn.Network
	switch {
	case t.whiten:
		net = nn.NewAutoencoderWhitened(sizes)
	case t.norm != nn.NoNorm:
		net = nn.NewAutoencoderNorm(sizes, t.norm)
	default:
		net = nn.NewAutoencoder(sizes)
	}
	net.Init(init, rng)
	if t.newton != nil {
		for l := 0; l+1 < len(sizes); l++ {
			if p := sizes[l+1] * (sizes[l] + 1); p > maxParams {
				return nil, fmt.Errorf("-opt newton holds each layer's exact %d×%d curvature block: layer %d (%d→%d) has %d parameters, more than %d; use a small net such as -arch 784-2-784, or -opt kfac", p, p, l, sizes[l], sizes[l+1], p, maxParams)
			}
		}
	}
	t.net, t.loss = net, loss
	if t.problem != nil {
		t.problem.Loss = func() (float64, error) {
			t.net.Forward(t.xb)
			return t.loss.Value(t.net.Output(), t.xb), nil
		}
	}
	return net, nil
}

// refreshWhitening re-estimates the whitening of a natural neural network
// from the sample; a no-op for other methods.
func (t *trainer) refreshWhitening() error {
	if !t.whiten {
		return nil
	}
	return t.net.Whiten(t.sample, t.whitenEps)
}

// step runs the forward and backward passes the method needs on the
// minibatch xb and applies one update.
func (t *trainer) step(update int, xb *mat.Dense) error {
	t.xb = xb
	switch {
	case t.back != nil && (t.statsDue == nil || t.statsDue()):
		t.back.Fill(t.net, t.loss, xb, xb)
	case t.newton != nil:
		t.net.Forward(xb)
		t.net.Backward(t.loss, xb)
		t.newtonBack(xb)
	default:
		t.net.Forward(xb)
		t.net.Backward(t.loss, xb)
	}
	if err := t.opt.Step(t.net.Records()); err != nil {
		return err
	}
	if t.whiten && t.every > 0 && update%t.every == 0 {
		if err := t.refreshWhitening(); err != nil {
			return fmt.Errorf("whitening refresh: %w", err)
		}
	}
	return nil
}

// newtonBack fills the records' Back with the exact Gauss–Newton rows
// J_aᵀ D^{1/2} (table 3.I at the logits) of the first newtonSub examples of
// the batch, and BackScale with 1/newtonSub: the exact GN blocks of that
// sub-batch (Martens & Grosse's τ1 trick), with the gradient on the whole
// batch.
func (t *trainer) newtonBack(xb *mat.Dense) {
	n, _ := xb.Dims()
	m := min(t.newtonSub, n)
	o := t.net.Output()
	_, k := o.F.Dims()
	sub := nn.Output{Act: o.Act, A: o.A.Slice(0, m, 0, k).(*mat.Dense), F: o.F.Slice(0, m, 0, k).(*mat.Dense)}
	t.sq.Reset()
	t.loss.SqrtD(&t.sq, nn.GaussNewton, nn.SplitLogits, sub, xb.Slice(0, m, 0, k).(*mat.Dense))
	rows := &t.sq
	t.idx = t.idx[:0]
	for r := 0; r < m*k; r++ {
		t.idx = append(t.idx, r/k)
	}
	t.net.BackwardVectors(rows, t.idx)
	for _, rec := range t.net.Records() {
		rec.BackScale = 1 / float64(m)
	}
	t.newton.Examples = t.idx
}
