package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// methods are the values of -opt. Each is built by a small constructor that
// holds one optimizer with its benchmark defaults and the glue it needs
// around a training step: which network it trains, which passes fill the
// records before optim's Step, and what else runs between updates. Copy the
// constructor of the method you want as the template of your own training
// loop.
//
// The defaults were chosen on 200–300 updates of the benchmark; see the
// README's table. A flag left unset takes the method's default; a flag set
// takes the given value, zero included (-momentum 0 is no momentum,
// -damping 0 no damping).
var methods = []method{
	{name: "sgd", desc: "SGD with classical momentum", build: newSGD},
	{name: "nesterov", desc: "SGD with Nesterov momentum (Sutskever et al. 2013)", build: newNesterov},
	{name: "rmsprop", desc: "RMSProp (Tieleman & Hinton 2012)", build: newRMSProp},
	{name: "adam", desc: "Adam (Kingma & Ba 2015)", build: newAdam},
	{name: "centered", desc: "centered gradient descent (thesis §3.4.1)", build: newCentered},
	{name: "acp", desc: "amortized covariance preconditioner, heuristic α (§3.4.2)", build: newACP},
	{name: "acp-fixed", desc: "ACP with a fixed α", build: newACPFixed},
	{name: "kfac", desc: "K-FAC with a Monte-Carlo Fisher (Martens & Grosse 2015)", build: newKFAC},
	{name: "ekfac", desc: "eigenvalue-corrected K-FAC (George et al. 2018), Monte-Carlo Fisher", build: newEKFAC},
	{name: "shampoo", desc: "Shampoo, RMSProp-grafted (Gupta et al. 2018, Anil et al. 2020)", build: newShampoo},
	{name: "soap", desc: "SOAP: Adam in Shampoo's eigenbasis (Vyas et al. 2024)", build: newSOAP},
	{name: "hf", desc: "Hessian-free: CG on Gauss–Newton products (Martens 2010)", build: newHF},
	{name: "nnn", desc: "natural neural network: whitened layers trained by SGD (§3.5.2)", build: newNNN},
	{name: "newton", desc: "block-diagonal Newton on exact GN blocks (§3.1.6); small nets only", build: newNewton},
}

// method is one value of -opt.
type method struct {
	name, desc string
	// build returns the method with the settings of c: its flags, unset or
	// set, and c.norm, c.arch. rng is the run's source of randomness, for
	// the methods that sample.
	build func(c config, rng *rand.Rand) (*trainer, error)
}

// findMethod returns the method named name.
func findMethod(name string) (method, error) {
	for _, m := range methods {
		if m.name == name {
			return m, nil
		}
	}
	names := make([]string, len(methods))
	for i, m := range methods {
		names[i] = m.name
	}
	return method{}, fmt.Errorf("unknown -opt %q (available: %s)", name, strings.Join(names, ", "))
}

// methodsHelp is the usage text of -opt: one line per method.
func methodsHelp() string {
	var b strings.Builder
	b.WriteString("optimizer, one of")
	for _, m := range methods {
		fmt.Fprintf(&b, "\n  %-10s %s", m.name, m.desc)
	}
	return b.String()
}

// optimizer is what every optimizer of package optim has: Step, and the
// check of its settings that Step runs first.
type optimizer interface {
	optim.Optimizer
	Validate() error
}

// trainer is what a method's constructor returns: one optimizer and the
// glue around it, as closures over the optimizer and their own buffers.
type trainer struct {
	// label describes the method and its settings in effect; run prints it.
	label string
	// opt is the optimizer, for the check of the settings before MNIST
	// loads.
	opt optimizer
	// network returns the network the method trains, uninitialised.
	network func(sizes []int) *nn.Network
	// start, if set, runs once before the first update, after the network
	// is initialised, with the training images.
	start func(net *nn.Network, train *mat.Dense, rng *rand.Rand) error
	// step runs the passes the method needs on the minibatch xb (the
	// inputs and targets of the autoencoder) and applies update number
	// update, counting from 1.
	step func(net *nn.Network, loss nn.Loss, xb *mat.Dense, update int) error
}

// The first-order methods read the gradients that nn's Backward puts in the
// records, and nothing else; they train the plain network or, with -norm,
// the batch-normalised one.

// newSGD is SGD with classical momentum (Nesterov's with -nesterov):
// η 0.01, μ 0.9.
func newSGD(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.SGD{
		Rate:     c.lr.or(0.01),
		Momentum: c.momentum.or(0.9),
		Nesterov: c.nesterov,
	}
	return gradientTrainer(c, opt, fmt.Sprintf("sgd lr=%g momentum=%g nesterov=%v", opt.Rate, opt.Momentum, opt.Nesterov))
}

// newNesterov is SGD with Nesterov momentum: η 0.01, μ 0.9.
func newNesterov(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.SGD{
		Rate:     c.lr.or(0.01),
		Momentum: c.momentum.or(0.9),
		Nesterov: true,
	}
	return gradientTrainer(c, opt, fmt.Sprintf("sgd lr=%g momentum=%g nesterov=%v", opt.Rate, opt.Momentum, opt.Nesterov))
}

// newRMSProp is RMSProp: η 0.001, no momentum.
func newRMSProp(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.RMSProp{
		Rate:     c.lr.or(1e-3),
		Momentum: c.momentum.or(0),
	}
	return gradientTrainer(c, opt, fmt.Sprintf("rmsprop lr=%g momentum=%g", opt.Rate, opt.Momentum))
}

// newAdam is Adam with the paper's β₁, β₂ and ε (Adam's zero values):
// η 0.001. -momentum does not apply.
func newAdam(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.Adam{Rate: c.lr.or(1e-3)}
	return gradientTrainer(c, opt, fmt.Sprintf("adam lr=%g", opt.Rate))
}

// newCentered is centered gradient descent: η 0.1, μ 0.9.
func newCentered(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.Centered{
		Rate:     c.lr.or(0.1),
		Momentum: c.momentum.or(0.9),
		Nesterov: c.nesterov,
	}
	return gradientTrainer(c, opt, fmt.Sprintf("centered lr=%g momentum=%g", opt.Rate, opt.Momentum))
}

// gradientTrainer is the glue of a first-order method: the plain network,
// or the batch-normalised one with -norm; forward, backward, Step.
func gradientTrainer(c config, opt optimizer, label string) (*trainer, error) {
	norm, err := parseNorm(c.norm)
	if err != nil {
		return nil, err
	}
	t := &trainer{label: label, opt: opt, network: nn.NewAutoencoder}
	if norm != nn.NoNorm {
		t.label += ", " + norm.String()
		t.network = func(sizes []int) *nn.Network { return nn.NewAutoencoderNorm(sizes, norm) }
	}
	t.step = func(net *nn.Network, loss nn.Loss, xb *mat.Dense, _ int) error {
		net.Forward(xb)
		net.Backward(loss, xb) // fills every record's Input, Grad, GradW, GradB
		return opt.Step(net.Records())
	}
	return t, nil
}

// The curvature-based methods.

// newACP is ACP with the heuristic α = max (∇_a l)² of §3.4.2. It reads
// the inputs and gradients that Backward puts in the records; its damping
// is absolute.
func newACP(c config, _ *rand.Rand) (*trainer, error) {
	return acpTrainer(c, &optim.ACP{
		Rules: curvatureRules(c, 0.1, 0.9, 3, 20),
		Alpha: c.alpha.or(0), // 0: the heuristic
	})
}

// newACPFixed is ACP with a fixed α, which wants a larger rate and damping.
func newACPFixed(c config, _ *rand.Rand) (*trainer, error) {
	return acpTrainer(c, &optim.ACP{
		Rules: curvatureRules(c, 0.3, 0.9, 10, 20),
		Alpha: c.alpha.or(1),
	})
}

// acpTrainer is the glue of ACP: the plain network; forward, backward,
// Step.
func acpTrainer(c config, opt *optim.ACP) (*trainer, error) {
	if err := perExample(c); err != nil {
		return nil, err
	}
	alpha := "max squared gradient"
	if opt.Alpha > 0 {
		alpha = fmt.Sprint(opt.Alpha)
	}
	return &trainer{
		label: fmt.Sprintf("acp lr=%g momentum=%g damping=%g norm-constraint=%g (relative) alpha=%s period=%d",
			opt.Rate, opt.Momentum, opt.Damping, opt.NormConstraint, alpha, opt.InversePeriod),
		opt:     opt,
		network: nn.NewAutoencoder,
		step: func(net *nn.Network, loss nn.Loss, xb *mat.Dense, _ int) error {
			net.Forward(xb)
			net.Backward(loss, xb)
			return opt.Step(net.Records())
		},
	}, nil
}

// newKFAC is K-FAC with factored Tikhonov damping relative to the factors
// and its default norm constraint. Its output-side factor is a Monte-Carlo
// Fisher: one gradient per example at a target sampled from the model,
// backpropagated into the records' Back on the updates where K-FAC reads
// its statistics.
func newKFAC(c config, rng *rand.Rand) (*trainer, error) {
	if err := perExample(c); err != nil {
		return nil, err
	}
	opt := &optim.KFAC{Rules: curvatureRules(c, 1, 0, 0.1, 20)}
	return backTrainer(c, rng, "kfac", opt, &opt.Rules)
}

// newEKFAC is EKFAC with K-FAC's settings and glue: damping relative to
// the mean of the eigenvalue scaling, eigenbases every 50 updates after a
// doubling warm-up, the scaling re-estimated from a Monte-Carlo Fisher at
// every statistics update.
func newEKFAC(c config, rng *rand.Rand) (*trainer, error) {
	if err := perExample(c); err != nil {
		return nil, err
	}
	opt := &optim.EKFAC{Rules: curvatureRules(c, 1, 0, 0.1, optim.DefaultEKFACInversePeriod)}
	return backTrainer(c, rng, "ekfac", opt, &opt.Rules)
}

// backTrainer is the glue of the methods whose statistics read Back (K-FAC,
// EKFAC): a Monte-Carlo Fisher, one gradient per example at a target
// sampled from the model, backpropagated into the records' Back on the
// updates where the statistics are due (on -stats-batch examples), and
// the closures of -auto-rate and -adapt-damping.
func backTrainer(c config, rng *rand.Rand, name string, opt interface {
	optimizer
	StatsDue() bool
}, rules *optim.Rules) (*trainer, error) {
	rules.StatsPeriod = c.statsPeriod.or(0)
	rules.AutoRate, rules.AdaptDamping = c.autoRate, c.adaptDamping
	back := &network.Backprop{Estimator: network.FisherGradients, Rand: rng, Examples: c.statsBatch.or(0)}
	stats := "all"
	if back.Examples > 0 {
		stats = fmt.Sprint(back.Examples)
	}
	return &trainer{
		label: fmt.Sprintf("%s lr=%g momentum=%g damping=%g (relative) norm-constraint=%g (relative) inverse-period=%d stats-period=%d fisher=monte-carlo on %s examples per batch",
			name, rules.Rate, rules.Momentum, rules.Damping, rules.NormConstraint, rules.InversePeriod, max(rules.StatsPeriod, 1), stats),
		opt:     opt,
		network: nn.NewAutoencoder,
		step: func(net *nn.Network, loss nn.Loss, xb *mat.Dense, _ int) error {
			if opt.StatsDue() {
				back.Fill(net, loss, xb, xb) // Forward, Backward, and Back
			} else {
				net.Forward(xb)
				net.Backward(loss, xb)
			}
			if rules.AutoRate || rules.AdaptDamping {
				rules.Problem.Loss, rules.Problem.GNVec = network.Closures(net, loss, xb, xb)
			}
			return opt.Step(net.Records())
		},
	}, nil
}

// newShampoo is Shampoo with its defaults (optim.Shampoo: η 0.001 on
// RMSProp-grafted steps, no momentum, damping 1e-4 relative to each
// factor, roots every 50 updates after a doubling warm-up, no norm
// constraint). It reads only the
// gradients, so it trains the plain network or, with -norm, the
// batch-normalised one.
func newShampoo(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.Shampoo{Rules: gradientRules(c, optim.DefaultShampooRate, 0, optim.DefaultShampooDamping, optim.DefaultShampooInversePeriod)}
	return gradientTrainer(c, opt, fmt.Sprintf("shampoo lr=%g momentum=%g damping=%g (relative to each factor) period=%d norm-constraint=%g",
		opt.Rate, opt.Momentum, opt.Damping, opt.InversePeriod, opt.NormConstraint))
}

// newSOAP is SOAP with the paper's settings (optim.SOAP: η 0.003,
// β₁ = β₂ = 0.95, ε 1e-8, no norm constraint) but its eigenbases every 50
// updates instead of 10: on this network a refresh costs about 1.4 s, and
// in 60 s the paper's period reached 173.6, every 50 updates 114.9.
// It reads only the gradients.
func newSOAP(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.SOAP{Rules: gradientRules(c, optim.DefaultSOAPRate, 0, optim.DefaultSOAPDamping, 50)}
	return gradientTrainer(c, opt, fmt.Sprintf("soap lr=%g momentum=%g epsilon=%g period=%d norm-constraint=%g",
		opt.Rate, opt.Momentum, opt.Damping, opt.InversePeriod, opt.NormConstraint))
}

// newHF is Hessian-free optimization with its defaults (optim.HessianFree:
// initial λ 1, adapted; at most 250 CG iterations; norm constraint 0.1
// relative to the risk). Each update runs CG on the Gauss–Newton products
// of the batch (-stats-batch m: of its first m examples, Martens' smaller
// batches for the products), with the risk of the whole batch for the
// backtracking, the damping rule and the line search.
func newHF(c config, _ *rand.Rand) (*trainer, error) {
	if err := perExample(c); err != nil {
		return nil, err
	}
	opt := &optim.HessianFree{Damping: c.damping.or(0), NormConstraint: c.trust.or(0)}
	if c.undamped() {
		return nil, errors.New("-opt hf -damping 0: Hessian-free needs a positive initial damping")
	}
	m := c.statsBatch.or(0)
	products := "the batch"
	if m > 0 {
		products = fmt.Sprintf("the first %d examples of each batch", m)
	}
	return &trainer{
		label: fmt.Sprintf("hessian-free λ₀=%g (adapted) norm-constraint=%g (relative) max-cg=%d, GN products on %s",
			c.damping.or(optim.DefaultHFDamping), c.trust.or(optim.DefaultHFNormConstraint), optim.DefaultHFMaxIters, products),
		opt:     opt,
		network: nn.NewAutoencoder,
		step: func(net *nn.Network, loss nn.Loss, xb *mat.Dense, _ int) error {
			net.Forward(xb)
			net.Backward(loss, xb)
			var gnvec func(dst, v []secondorder.Direction) error
			opt.Problem.Loss, gnvec = network.Closures(net, loss, xb, xb)
			if n, _ := xb.Dims(); m > 0 && m < n {
				sub := xb.Slice(0, m, 0, xb.RawMatrix().Cols)
				_, gnvec = network.Closures(net, loss, sub, sub)
			}
			opt.Problem.GNVec = gnvec
			return opt.Step(net.Records())
		},
	}, nil
}

// gradientRules are the step rules of the gradient-only preconditioners
// (Shampoo, SOAP): curvatureRules without a norm constraint unless
// -norm-constraint is given.
func gradientRules(c config, eta, mu, lambda float64, period int) optim.Rules {
	r := curvatureRules(c, eta, mu, lambda, period)
	r.NormConstraint = c.trust.or(math.Inf(1))
	return r
}

// newNNN is a natural neural network (PRONG, Desjardins et al. 2015):
// whitened layers, trained by plain SGD, whose whitening is re-estimated
// from a fixed sample of the training set before the first update and
// every -period updates. Full whitening (ε near 0.1) made every learning
// rate tried fail on this benchmark; a strongly regularised U, close to
// centering and rescaling each layer's input, trains (README).
func newNNN(c config, _ *rand.Rand) (*trainer, error) {
	if err := perExample(c); err != nil {
		return nil, err
	}
	opt := &optim.SGD{
		Rate:     c.lr.or(0.1),
		Momentum: c.momentum.or(0),
		Nesterov: c.nesterov,
	}
	eps := c.whitenEps.or(100) // relative to the mean input variance
	every := c.period.or(100)
	var sample *mat.Dense
	return &trainer{
		label: fmt.Sprintf("nnn (whitened layers, ε=%g relative, sgd lr=%g momentum=%g, refresh every %d updates)",
			eps, opt.Rate, opt.Momentum, every),
		opt:     opt,
		network: nn.NewAutoencoderWhitened,
		start: func(net *nn.Network, train *mat.Dense, rng *rand.Rand) error {
			// The whitening sample: a fixed random subset of the
			// training set.
			n, _ := train.Dims()
			sample = mat.NewDense(min(1000, n), datasets.MNISTPixels, nil)
			for i := range min(1000, n) {
				sample.SetRow(i, train.RawRowView(rng.IntN(n)))
			}
			return net.Whiten(sample, eps)
		},
		step: func(net *nn.Network, loss nn.Loss, xb *mat.Dense, update int) error {
			net.Forward(xb)
			net.Backward(loss, xb)
			if err := opt.Step(net.Records()); err != nil {
				return err
			}
			if update%every == 0 {
				if err := net.Whiten(sample, eps); err != nil {
					return fmt.Errorf("whitening refresh: %w", err)
				}
			}
			return nil
		},
	}, nil
}

// newtonSub is the number of examples of each batch whose exact
// Gauss–Newton rows build Newton's blocks.
const newtonSub = 10

// newNewton is block-diagonal Newton: each layer's exact Gauss–Newton block
// on the first newtonSub examples of the batch (Martens & Grosse's τ1
// trick), with the gradient on the whole batch, and relative damping.
// Its blocks have (n_out(n_in+1))² entries: small networks only.
func newNewton(c config, _ *rand.Rand) (*trainer, error) {
	if err := perExample(c); err != nil {
		return nil, err
	}
	opt := &optim.Newton{
		Rules:     curvatureRules(c, 1, 0, 0.1, 0),
		MaxParams: c.maxParams.or(optim.DefaultNewtonMaxParams),
	}
	// Refuse a large layer now, before MNIST loads, rather than at the
	// first Step.
	if sizes, err := parseArch(c.arch); err == nil {
		for l := 0; l+1 < len(sizes); l++ {
			if p := sizes[l+1] * (sizes[l] + 1); p > opt.MaxParams {
				return nil, fmt.Errorf("-opt newton holds each layer's exact %d×%d curvature block: layer %d (%d→%d) has %d parameters, more than -max-params %d; use a small net such as -arch 784-2-784, or -opt kfac",
					p, p, l, sizes[l], sizes[l+1], p, opt.MaxParams)
			}
		}
	}
	// The exact GN rows J_aᵀ D^{1/2} of the first newtonSub examples only,
	// with BackScale 1/newtonSub: the records then hold the GN blocks of
	// that sub-batch.
	back := &network.Backprop{Estimator: network.GGNExact, Examples: newtonSub}
	return &trainer{
		label: fmt.Sprintf("block-diagonal newton lr=%g damping=%g (relative) norm-constraint=%g (relative), exact GN blocks on %d examples per batch",
			opt.Rate, opt.Damping, opt.NormConstraint, newtonSub),
		opt:     opt,
		network: nn.NewAutoencoder,
		step: func(net *nn.Network, loss nn.Loss, xb *mat.Dense, _ int) error {
			back.Fill(net, loss, xb, xb) // Forward, Backward on the whole batch, and Back on the sub-batch
			return opt.Step(net.Records())
		},
	}, nil
}

// parseNorm returns the normalisation named by -norm.
func parseNorm(s string) (nn.Norm, error) {
	switch s {
	case "", "none":
		return nn.NoNorm, nil
	case "bn":
		return nn.BatchNorm, nil
	case "meanbn":
		return nn.MeanOnlyBatchNorm, nil
	}
	return nn.NoNorm, fmt.Errorf("unknown -norm %q (want none, bn or meanbn)", s)
}

// perExample returns an error for -norm bn or meanbn: the methods that read
// per-example curvature (and the whitened layers of nnn) need the plain
// network.
func perExample(c config) error {
	norm, err := parseNorm(c.norm)
	if err != nil || norm == nn.NoNorm {
		return err
	}
	return fmt.Errorf("-norm %s cannot be combined with -opt %s: its curvature is per example, and batch normalisation couples the examples", c.norm, c.opt)
}

// curvatureRules returns the step rules that the flags give a
// curvature-based method whose benchmark defaults are the rate η, momentum
// μ, damping λ and refresh period (0: the method's).
func curvatureRules(c config, eta, mu, lambda float64, period int) optim.Rules {
	return optim.Rules{
		Rate:           c.lr.or(eta),
		Momentum:       c.momentum.or(mu),
		Nesterov:       c.nesterov,
		Damping:        c.damping.or(lambda),
		Undamped:       c.undamped(),
		NormConstraint: c.trust.or(optim.DefaultNormConstraint),
		InversePeriod:  c.period.or(period),
	}
}
