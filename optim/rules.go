package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder/dist"
	"github.com/secondorder/secondorder/kron"
)

// Rules are the step rules shared by every curvature-based optimizer (KFAC,
// ACP, Newton, DiagonalNewton and any Preconditioned): what turns the
// per-layer preconditioned gradients U_l = (C_l + λ_l I)⁻¹ ∇θ_l of the
// curvature blocks into an update,
//
//	δ = −η U + μ δ_prev,   θ ← θ + δ                      (classical momentum)
//	δ = μ (μ δ_prev − η U) − η U                          (Nesterov, as SGD)
//
// with η the learning rate (possibly following a Schedule and bounded by
// the norm constraint), μ the momentum, λ_l the damping of layer l
// (relative to the block's mean eigenvalue unless AbsoluteDamping), and
// optionally Levenberg–Marquardt adaptation of λ (Martens & Grosse 2015
// §6.5) and η, μ chosen from the exact quadratic model (§7). The settings
// are written once here and documented once; each optimizer states its own
// defaults for the settings whose zero value means "the method's default".
//
// Conventions of every setting: zero means the default; a legitimate zero
// that differs from the default is asked for by a flag (Undamped for
// λ = 0); negative, NaN and infinite values are refused by Validate (except
// NormConstraint = +Inf, which turns the constraint off).
//
// Values of Rules are safe for concurrent use; the optimizers that embed
// them are not.
type Rules struct {
	// Rate is the learning rate η. Zero means the method's default.
	Rate float64
	// Schedule, if set, multiplies Rate at every update (see Schedule).
	Schedule Schedule
	// Momentum is μ in [0, 1); zero means none.
	Momentum float64
	// Nesterov selects Nesterov momentum instead of classical momentum.
	Nesterov bool
	// NormConstraint is C, the trust region of the fixed rate: the squared
	// norm η² ∇ᵀU of the update's new part in the damped metric of the
	// blocks (twice the predicted change of the loss along it, when the
	// blocks model the curvature) is kept below C times the risk R of the
	// minibatch, read from the records' Risk (which package nn's Backward
	// sets): η ← min(η, sqrt(C R / ∇ᵀU)) (Ba, Grosse & Martens 2017, made
	// relative to R so that one C holds for losses of any scale). With
	// AbsoluteNormConstraint the bound is C itself, in the units of the
	// loss. Zero means the method's default; +Inf turns it off. It bounds
	// the fixed rate, not AutoRate's.
	NormConstraint float64
	// AbsoluteNormConstraint makes NormConstraint the plain bound on
	// η² ∇ᵀU, in the units of the loss, for records without Risk.
	AbsoluteNormConstraint bool
	// Damping is the Tikhonov damping λ, in units of each block's mean
	// eigenvalue tr(C_l)/P_l (relative) unless AbsoluteDamping. Zero
	// means the method's default; see Undamped for λ = 0.
	Damping float64
	// AbsoluteDamping makes Damping the plain λ of C_l + λI for every layer.
	AbsoluteDamping bool
	// Undamped sets λ = 0; Damping must then be zero. A block that is not
	// positive definite still gets its damping raised (see Retry).
	Undamped bool
	// StatsPeriod is T1: the blocks' statistics are updated at updates
	// 0, T1, 2T1, … (counting from 0). Zero means the method's default.
	StatsPeriod int
	// InversePeriod is T3: the blocks are refactorized at updates 0, T3,
	// 2T3, … (and K-FAC at every update of its warm-up, and any block
	// without a factorization). Zero means the method's default.
	InversePeriod int
	// AdaptDamping turns on the Levenberg–Marquardt adaptation of λ
	// (Martens & Grosse 2015 §6.5), which needs Problem.Loss.
	AdaptDamping bool
	// LMPeriod is T2: λ is adapted every T2 updates. Zero means
	// DefaultLMPeriod.
	LMPeriod int
	// AutoRate chooses η and μ of every update from the exact quadratic
	// model (Martens & Grosse 2015 §7), which needs Problem.GNVec.
	AutoRate bool
	// MaxMomentum bounds the momentum that AutoRate chooses: a momentum of
	// the model outside [0, MaxMomentum] is clipped and the rate re-chosen
	// for it (Report.MomentumClipped). Zero means DefaultMaxMomentum.
	MaxMomentum float64
	// MinDamping and MaxDamping bound the damping that AdaptDamping adapts,
	// in the units of Damping (relative to each block's curvature unless
	// AbsoluteDamping). Zero means DefaultMinDampingRatio and
	// DefaultMaxDampingRatio times the initial damping (Damping or the
	// method's default).
	MinDamping, MaxDamping float64
	// ExtraRate is the learning rate of the plain gradient steps of the
	// layers' Extra parameters (batch normalisation's γ, β), outside the
	// curvature model; zero means Rate (after the schedule).
	ExtraRate float64
	// Retry is the policy applied when a damped block is not positive
	// definite (curvature.RefreshDamped); the zero value means 10 tries,
	// growth 10.
	Retry kron.Retry
	// OnDampingRaised, if set, is called when the damping of a layer had to
	// be raised for its block to be positive definite, with the layer's
	// index and the damping used, in the units of Damping. It is called
	// during the step, which may still be refused afterwards (the raised
	// damping then undone with the rest of the step).
	OnDampingRaised func(layer int, damping float64)
	// Comm, if set with more than one worker, makes Step data-parallel
	// (package dist): each worker passes the records of its shard of the
	// minibatch, and the blocks' statistics (curvature.Sharded), the
	// preconditioned gradients U (Precondition is linear in the gradient,
	// so their mean is the U of the mean gradient; each shard may take the
	// batch-side solve), the Extra gradients and Risk, and the values of
	// Problem's closures, which see the worker's shard, are replaced by
	// their means over all workers' examples, so that every worker applies
	// the same update; the gradient-only methods (Shampoo, SOAP) average
	// the gradients themselves. The refreshes of curvature.Replicated
	// blocks are split between the workers and broadcast. Nil is one
	// process.
	Comm dist.Comm
	// Problem holds the closures over the current minibatch that
	// AdaptDamping (Loss) and AutoRate (GNVec) need; set them before each
	// Step. A GNVec set without AutoRate still serves the LM model.
	Problem Problem
}

// DefaultNormConstraint is the default Rules.NormConstraint of every
// curvature-based optimizer: an update's new part may predict a change of
// the loss of at most about 0.1 % of the risk, η² ∇ᵀU ≤ 0.001 R. Chosen on
// the test problems of package optimtest and on MNIST (docs/tuning.md):
// 0.01 lets K-FAC and Newton diverge on the classifiers, 0.003 is K-FAC's
// best on the MNIST autoencoder and classifier, 0.001 keeps a margin of
// ten.
const DefaultNormConstraint = 0.001

// Defaults of the automatic mode (AutoRate, AdaptDamping).
const (
	// DefaultMaxMomentum is the default Rules.MaxMomentum.
	DefaultMaxMomentum = 0.95
	// DefaultMinDampingRatio and DefaultMaxDampingRatio give the default
	// bounds of the adapted damping, as multiples of the initial damping.
	// Without a floor, LM took K-FAC's relative damping on the MNIST
	// classifier from 0.1 to 6·10⁻⁷ in 300 updates (85 % test accuracy);
	// floors of 0.01, 0.1 and 0.3 times gave 93.8, 93.8 and 94.7 % (ReLU),
	// 91.3, 92.3 and 92.8 % (tanh): see docs/tuning.md.
	DefaultMinDampingRatio = 0.3
	DefaultMaxDampingRatio = 1e4
)

// DefaultLMPeriod is T2 of Martens & Grosse (2015, §6.5, §8), the default
// Rules.LMPeriod.
const DefaultLMPeriod = 5

// methodDefaults are the values that zero settings of Rules take for one
// method.
type methodDefaults struct {
	name           string
	rate           float64
	damping        float64
	absolute       bool // damping in absolute units by default (ACP)
	normConstraint float64
	statsPeriod    int // 0: the inverse period
	inversePeriod  int
	warmUp         bool // refresh at every update of the first inverse period (K-FAC)
	doublingWarmUp bool // refresh at updates 1, 2, 4, 8, … of the first inverse period (eigendecompositions)
	needsBack      bool
	gradOnly       bool // the statistics come from GradW and GradB alone (Shampoo, SOAP): Input is not read
}

// rules are Rules with every default filled in.
type rules struct {
	Rules
	d        methodDefaults
	eta      float64
	lambda   float64
	absolute bool
	c        float64
	t1, t2   int
	t3       int
	extra    float64
	maxMu    float64
	// minLambda and maxLambda bound the adapted λ.
	minLambda, maxLambda float64
}

// resolve validates r and fills in the defaults d.
func (r Rules) resolve(d methodDefaults) (rules, error) {
	if err := r.validate(d.name); err != nil {
		return rules{}, err
	}
	return r.fill(d), nil
}

// fill returns r with the defaults d filled in, without validating: the one
// place where a zero setting becomes the method's default.
func (r Rules) fill(d methodDefaults) rules {
	s := rules{Rules: r, d: d}
	s.eta = orFloat(r.Rate, d.rate)
	s.lambda = orFloat(r.Damping, d.damping)
	if r.Undamped {
		s.lambda = 0
	}
	s.absolute = r.AbsoluteDamping || d.absolute
	s.c = orFloat(r.NormConstraint, d.normConstraint)
	s.t3 = orInt(r.InversePeriod, d.inversePeriod)
	s.t1 = orInt(r.StatsPeriod, orInt(d.statsPeriod, s.t3))
	s.t2 = orInt(r.LMPeriod, DefaultLMPeriod)
	s.extra = r.ExtraRate
	s.maxMu = orFloat(r.MaxMomentum, DefaultMaxMomentum)
	s.minLambda = orFloat(r.MinDamping, DefaultMinDampingRatio*s.lambda)
	s.maxLambda = orFloat(r.MaxDamping, DefaultMaxDampingRatio*s.lambda)
	return s
}

// validate returns an error, prefixed "optim: <name>:", describing the first
// invalid setting.
func (r Rules) validate(name string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("optim: %s: "+format, append([]any{name}, a...)...)
	}
	switch {
	case !finiteNonNeg(r.Rate):
		return bad("Rate=%g, want finite and ≥ 0 (0 for the default)", r.Rate)
	case !(r.Momentum >= 0 && r.Momentum < 1):
		return bad("Momentum=%g, want in [0, 1)", r.Momentum)
	case !(r.NormConstraint >= 0):
		return bad("NormConstraint=%g, want > 0 (0 for the default, +Inf for none)", r.NormConstraint)
	case !finiteNonNeg(r.Damping):
		return bad("Damping=%g, want finite and ≥ 0 (0 for the default)", r.Damping)
	case r.Undamped && r.Damping != 0:
		return bad("Undamped with Damping=%g; set one of them", r.Damping)
	case r.StatsPeriod < 0 || r.InversePeriod < 0 || r.LMPeriod < 0:
		return bad("periods StatsPeriod=%d InversePeriod=%d LMPeriod=%d, want ≥ 1 (0 for the default)", r.StatsPeriod, r.InversePeriod, r.LMPeriod)
	case !(r.MaxMomentum >= 0 && r.MaxMomentum < 1):
		return bad("MaxMomentum=%g, want in [0, 1) (0 for %g)", r.MaxMomentum, DefaultMaxMomentum)
	case !finiteNonNeg(r.MinDamping) || !finiteNonNeg(r.MaxDamping):
		return bad("MinDamping=%g MaxDamping=%g, want finite and ≥ 0 (0 for the defaults)", r.MinDamping, r.MaxDamping)
	case r.MinDamping > 0 && r.MaxDamping > 0 && r.MinDamping > r.MaxDamping:
		return bad("MinDamping=%g > MaxDamping=%g", r.MinDamping, r.MaxDamping)
	case !finiteNonNeg(r.ExtraRate):
		return bad("ExtraRate=%g, want finite and ≥ 0 (0: Rate)", r.ExtraRate)
	case r.Retry.Tries < 0 || (r.Retry.Growth != 0 && !(r.Retry.Growth > 1)) || math.IsInf(r.Retry.Growth, 1):
		return bad("Retry %+v, want Tries ≥ 1 and finite Growth > 1 (0 for the defaults)", r.Retry)
	}
	return nil
}

// rate returns η at update t (counting from 0), with the schedule.
func (s *rules) rate(t int) float64 {
	if s.Schedule == nil {
		return s.eta
	}
	return s.eta * s.Schedule(t)
}

// extraRate returns the rate of the Extra parameters at update t.
func (s *rules) extraRate(t int) float64 {
	if s.extra > 0 {
		return s.extra
	}
	return s.rate(t)
}

func orFloat(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

func orInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

func finiteNonNeg(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }
