package main

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// methods are the values of -opt, one per optimizer of package optim. Each
// is built by a small constructor that holds the optimizer's zero value —
// the library's documented defaults, untuned for this problem — with only
// the settings given by -lr, -momentum and -damping, and the glue it needs
// around a training step: which passes fill the records before optim's
// Step. Copy the constructor of the method you want as the template of your
// own training loop.
var methods = []method{
	{name: "sgd", flags: "momentum", build: newSGD,
		desc: "SGD (zero value: η 0.01, no momentum)"},
	{name: "nesterov", flags: "momentum", build: newNesterov,
		desc: "SGD with Nesterov momentum (zero value: η 0.01, μ 0, so plain SGD until -momentum is set)"},
	{name: "rmsprop", flags: "momentum", build: newRMSProp,
		desc: "RMSProp (zero value: η 0.001, ρ 0.9, ε 1e-8, no momentum)"},
	{name: "adam", flags: "", build: newAdam,
		desc: "Adam (zero value: the paper's η 0.001, β₁ 0.9, β₂ 0.999, ε 1e-8)"},
	{name: "centered", flags: "momentum", build: newCentered,
		desc: "centered gradient descent, thesis §3.4.1 (zero value: η 0.01, no momentum)"},
	{name: "acp", flags: "momentum damping", build: newACP,
		desc: "amortized covariance preconditioner, §3.4.2 (zero value: η 0.1 under the norm constraint 0.001 × risk, λ 0.01 absolute, heuristic α, refresh every 20)"},
	{name: "kfac", flags: "momentum damping", build: newKFAC,
		desc: "K-FAC, Monte-Carlo Fisher (zero value: η 1 under the norm constraint 0.001 × risk, λ 0.1 relative, inverses every 20)"},
	{name: "ekfac", flags: "momentum damping", build: newEKFAC,
		desc: "eigenvalue-corrected K-FAC (George et al. 2018), Monte-Carlo Fisher (zero value: η 1 under the norm constraint 0.001 × risk, λ 0.1 relative, eigenbases every 50 after a doubling warm-up)"},
	{name: "shampoo", flags: "momentum damping", build: newShampoo,
		desc: "Shampoo, RMSProp-grafted (zero value: η 0.001, λ 1e-4 relative to each factor, roots every 50 after a doubling warm-up, no norm constraint)"},
	{name: "soap", flags: "momentum damping", build: newSOAP,
		desc: "SOAP, Adam in Shampoo's eigenbasis (zero value: η 0.003, β₁ = β₂ = 0.95, ε 1e-8, eigenbases every 10)"},
	{name: "hf", flags: "damping", build: newHF,
		desc: "Hessian-free, CG on Gauss–Newton products (zero value: initial λ 1 adapted, ≤ 250 CG iterations, norm constraint 0.1 × risk)"},
	{name: "newton", flags: "momentum damping", build: newNewton,
		desc: fmt.Sprintf("block-diagonal Newton on exact Fisher blocks, §3.1.6 (zero value: η 1 under the norm constraint 0.001 × risk, λ 0.1 relative); layers of ≤ %d parameters, e.g. -arch 784-6-10", optim.DefaultNewtonMaxParams)},
}

// method is one value of -opt.
type method struct {
	name, desc string
	// flags lists the method flags besides -lr that the method takes.
	flags string
	// build returns the method with the settings of c. rng is the run's
	// source of randomness, for the methods that sample targets.
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
		fmt.Fprintf(&b, "\n  %-9s %s", m.name, m.desc)
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
// glue around it.
type trainer struct {
	// label describes the method and the settings in effect; run prints it.
	label string
	// opt is the optimizer, for the check of its settings before MNIST
	// loads.
	opt optimizer
	// step runs the passes the method needs on the minibatch xb with
	// one-hot targets yb, then applies one update.
	step func(net *nn.Network, loss nn.Loss, xb, yb *mat.Dense) error
}

// The first-order methods read the gradients that nn's Backward puts in the
// records (and centered GD the inputs), nothing else. An unset flag leaves
// the field at zero, which means the optimizer's default.

// newSGD is optim.SGD: η 0.01, no momentum.
func newSGD(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.SGD{Rate: c.lr.val, Momentum: c.momentum.val}
	return gradientTrainer(opt, fmt.Sprintf("sgd η=%g μ=%g", c.lr.or(optim.DefaultSGDRate), opt.Momentum)), nil
}

// newNesterov is optim.SGD with Nesterov momentum. Its zero momentum makes
// it plain SGD; pass -momentum to see Nesterov's step.
func newNesterov(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.SGD{Rate: c.lr.val, Momentum: c.momentum.val, Nesterov: true}
	return gradientTrainer(opt, fmt.Sprintf("sgd η=%g μ=%g nesterov", c.lr.or(optim.DefaultSGDRate), opt.Momentum)), nil
}

// newRMSProp is optim.RMSProp: η 0.001, ρ 0.9, ε 1e-8, no momentum.
func newRMSProp(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.RMSProp{Rate: c.lr.val, Momentum: c.momentum.val}
	return gradientTrainer(opt, fmt.Sprintf("rmsprop η=%g ρ=%g μ=%g", c.lr.or(optim.DefaultRMSPropRate), optim.DefaultRMSPropRho, opt.Momentum)), nil
}

// newAdam is optim.Adam with the paper's settings: η 0.001, β₁ 0.9,
// β₂ 0.999, ε 1e-8.
func newAdam(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.Adam{Rate: c.lr.val}
	return gradientTrainer(opt, fmt.Sprintf("adam η=%g β₁=%g β₂=%g", c.lr.or(optim.DefaultAdamRate), optim.DefaultAdamBeta1, optim.DefaultAdamBeta2)), nil
}

// newCentered is optim.Centered, centered gradient descent: η 0.01, no
// momentum.
func newCentered(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.Centered{Rate: c.lr.val, Momentum: c.momentum.val}
	return gradientTrainer(opt, fmt.Sprintf("centered η=%g μ=%g", c.lr.or(optim.DefaultSGDRate), opt.Momentum)), nil
}

// gradientTrainer is the glue of a first-order method: forward, backward,
// Step.
func gradientTrainer(opt optimizer, label string) *trainer {
	return &trainer{
		label: label,
		opt:   opt,
		step: func(net *nn.Network, loss nn.Loss, xb, yb *mat.Dense) error {
			net.Forward(xb)
			net.Backward(loss, yb) // fills every record's Input, Grad, GradW, GradB
			return opt.Step(net.Records())
		},
	}
}

// The curvature-based methods share optim.Rules; the flags set its Rate,
// Momentum and Damping (-damping 0 is Undamped), the rest stays zero.

// flagRules returns the zero Rules with the method flags that were set.
func flagRules(c config) optim.Rules {
	return optim.Rules{
		Rate:     c.lr.val,
		Momentum: c.momentum.val,
		Damping:  c.damping.val,
		Undamped: c.undamped(),
	}
}

// newACP is optim.ACP with the heuristic α = max (∇_a l)² of §3.4.2: η 0.1,
// λ 0.01 absolute, statistics and factorization refreshed every 20
// updates. It reads the inputs and gradients that Backward puts in the
// records.
func newACP(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.ACP{Rules: flagRules(c)}
	return &trainer{
		label: fmt.Sprintf("acp η=%g (norm constraint %g × risk) μ=%g λ=%g (absolute) α=max squared gradient refresh=%d",
			c.lr.or(optim.DefaultACPRate), float64(optim.DefaultNormConstraint), opt.Momentum, c.damping.or(optim.DefaultACPDamping), optim.DefaultACPRefreshPeriod),
		opt: opt,
		step: func(net *nn.Network, loss nn.Loss, xb, yb *mat.Dense) error {
			net.Forward(xb)
			net.Backward(loss, yb)
			return opt.Step(net.Records())
		},
	}, nil
}

// newKFAC is optim.KFAC: η 1 under the norm constraint relative to the
// risk (optim.DefaultNormConstraint), relative
// damping λ 0.1, factor statistics every update, inverses every 20 updates
// after a warm-up. Its output-side factor is a Monte-Carlo Fisher: one
// gradient per example at a target sampled from the model's softmax,
// backpropagated into the records' Back on the updates where K-FAC reads
// its statistics (StatsDue).
func newKFAC(c config, rng *rand.Rand) (*trainer, error) {
	opt := &optim.KFAC{Rules: flagRules(c)}
	return backTrainer(opt, rng, fmt.Sprintf("kfac η=%g (norm constraint %g × risk) μ=%g λ=%g (relative) inverses every %d, Monte-Carlo Fisher",
		c.lr.or(optim.DefaultKFACRate), float64(optim.DefaultNormConstraint), opt.Momentum,
		c.damping.or(optim.DefaultKFACDamping), optim.DefaultKFACInversePeriod)), nil
}

// newEKFAC is optim.EKFAC, with K-FAC's records: η 1 under the norm
// constraint, relative damping λ 0.1 (of the mean eigenvalue scaling),
// eigenbases every 50 updates after a doubling warm-up, the scaling re-estimated at
// every update.
func newEKFAC(c config, rng *rand.Rand) (*trainer, error) {
	opt := &optim.EKFAC{Rules: flagRules(c)}
	return backTrainer(opt, rng, fmt.Sprintf("ekfac η=%g (norm constraint %g × risk) μ=%g λ=%g (relative) eigenbases every %d, Monte-Carlo Fisher",
		c.lr.or(optim.DefaultEKFACRate), float64(optim.DefaultNormConstraint), opt.Momentum,
		c.damping.or(optim.DefaultEKFACDamping), optim.DefaultEKFACInversePeriod)), nil
}

// backTrainer is the glue of the methods whose statistics read Back (K-FAC,
// EKFAC): a Monte-Carlo Fisher, one gradient per example at a target
// sampled from the model's softmax, backpropagated into the records' Back
// on the updates where the optimizer reads its statistics (StatsDue).
func backTrainer(opt interface {
	optimizer
	StatsDue() bool
}, rng *rand.Rand, label string) *trainer {
	back := &network.Backprop{Estimator: network.FisherGradients, Rand: rng}
	return &trainer{
		label: label,
		opt:   opt,
		step: func(net *nn.Network, loss nn.Loss, xb, yb *mat.Dense) error {
			if opt.StatsDue() {
				back.Fill(net, loss, xb, yb) // Forward, Backward, and Back
			} else {
				net.Forward(xb)
				net.Backward(loss, yb)
			}
			return opt.Step(net.Records())
		},
	}
}

// newShampoo is optim.Shampoo: η 0.001 on RMSProp-grafted steps, damping
// 1e-4 relative to each factor, roots every 50 updates after a doubling warm-up. It reads only the
// gradients.
func newShampoo(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.Shampoo{Rules: flagRules(c)}
	return gradientTrainer(opt, fmt.Sprintf("shampoo η=%g μ=%g λ=%g (relative to each factor) roots every %d, RMSProp grafting",
		c.lr.or(optim.DefaultShampooRate), opt.Momentum, c.damping.or(optim.DefaultShampooDamping), optim.DefaultShampooInversePeriod)), nil
}

// newSOAP is optim.SOAP with the paper's settings: η 0.003,
// β₁ = β₂ = 0.95, ε 1e-8, eigenbases every 10 updates. It reads only the
// gradients.
func newSOAP(c config, _ *rand.Rand) (*trainer, error) {
	opt := &optim.SOAP{Rules: flagRules(c)}
	return gradientTrainer(opt, fmt.Sprintf("soap η=%g μ=%g ε=%g eigenbases every %d",
		c.lr.or(optim.DefaultSOAPRate), opt.Momentum, c.damping.or(optim.DefaultSOAPDamping), optim.DefaultSOAPInversePeriod)), nil
}

// newHF is optim.HessianFree: CG on the Gauss–Newton products of the batch
// (network.Closures gives them, and the risk for the backtracking, the
// damping rule and the line search), initial λ 1 adapted by
// Levenberg–Marquardt.
func newHF(c config, _ *rand.Rand) (*trainer, error) {
	if c.undamped() {
		return nil, fmt.Errorf("-opt hf -damping 0: Hessian-free needs a positive initial damping")
	}
	opt := &optim.HessianFree{Damping: c.damping.val}
	return &trainer{
		label: fmt.Sprintf("hessian-free λ₀=%g (adapted) ≤ %d CG iterations (norm constraint %g × risk)",
			c.damping.or(optim.DefaultHFDamping), optim.DefaultHFMaxIters, float64(optim.DefaultHFNormConstraint)),
		opt: opt,
		step: func(net *nn.Network, loss nn.Loss, xb, yb *mat.Dense) error {
			net.Forward(xb)
			net.Backward(loss, yb)
			opt.Problem.Loss, opt.Problem.GNVec = network.Closures(net, loss, xb, yb)
			return opt.Step(net.Records())
		},
	}, nil
}

// newNewton is optim.Newton, block-diagonal Newton: η 1, relative damping
// λ 0.1, each layer's exact curvature block rebuilt and factorized at every
// update from the records' Back. Back holds the exact Fisher of the whole
// batch (network.FisherExact: k = 10 rows per example), which for the
// cross-entropy at the logits is also the exact Gauss–Newton matrix; the
// gradient then lies in the range of each block. (A Monte-Carlo Fisher, one
// sampled row per example, costs about half as much per update but did not
// train a 784-3-10 net even with -damping 10, where this one does.) A block
// has (n_out(n_in+1))² entries, so the layers must be small: the
// constructor refuses a layer of more than optim.DefaultNewtonMaxParams
// parameters before MNIST loads, rather than at the first Step.
func newNewton(c config, _ *rand.Rand) (*trainer, error) {
	if sizes, err := parseArch(c.arch); err == nil {
		for l := 0; l+1 < len(sizes); l++ {
			if p := sizes[l+1] * (sizes[l] + 1); p > optim.DefaultNewtonMaxParams {
				return nil, fmt.Errorf("-opt newton builds each layer's exact %d×%d curvature block: layer %d (%d→%d) has %d parameters, more than optim.DefaultNewtonMaxParams = %d; use a net such as -arch 784-6-10, or -opt kfac",
					p, p, l, sizes[l], sizes[l+1], p, optim.DefaultNewtonMaxParams)
			}
		}
	}
	opt := &optim.Newton{Rules: flagRules(c)}
	back := &network.Backprop{Estimator: network.FisherExact}
	return &trainer{
		label: fmt.Sprintf("block-diagonal newton η=%g (norm constraint %g × risk) μ=%g λ=%g (relative), exact blocks of the batch's Fisher",
			c.lr.or(optim.DefaultNewtonRate), float64(optim.DefaultNormConstraint), opt.Momentum, c.damping.or(optim.DefaultNewtonDamping)),
		opt: opt,
		step: func(net *nn.Network, loss nn.Loss, xb, yb *mat.Dense) error {
			back.Fill(net, loss, xb, yb) // Forward, Backward, and k rows of Back per example
			return opt.Step(net.Records())
		},
	}, nil
}
