package optim

import (
	"fmt"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// Defaults of ACP.
const (
	// DefaultACPRate is η; about 1/(number of layers) of a block Newton step.
	DefaultACPRate = 0.1
	// DefaultACPDamping is the absolute Tikhonov weight λ of Ā ⊗ αI + λI.
	DefaultACPDamping = 0.01
	// DefaultACPRefreshPeriod is N of algorithm 3, Rules.InversePeriod.
	DefaultACPRefreshPeriod = 20
)

var acpDefaults = methodDefaults{
	name:           "ACP",
	rate:           DefaultACPRate,
	damping:        DefaultACPDamping,
	absolute:       true,
	normConstraint: DefaultNormConstraint,
	inversePeriod:  DefaultACPRefreshPeriod,
}

// ACP is the amortized covariance preconditioner (thesis §3.3.3–3.4.2,
// algorithm 3): every layer's block is approximated by curvature.ACPBlock,
//
//	Ā ⊗ αI + λI,   Ā = [[E hhᵀ, μ], [μᵀ, 1]],
//
// the statistics of the layer's input alone with a scalar α standing for
// the output side, and the update is the exact solve
//
//	U = (1/α) [∇W ∇b] (Ā + (λ/α_r) I)⁻¹,   δ = −η U + μ_m δ_prev,
//
// in closed form on the bias (kron.AugmentedInverse). With λ = 0 it is
// eqs. 3.3.3 and the corrected 3.3.4; the update descends (algorithm 3's
// slip 3). The input statistics and the factorization are refreshed every
// InversePeriod updates (N of algorithm 3), from that update's minibatch,
// optionally averaged over refreshes (Decay); between refreshes only α
// follows the minibatch, so that the Tikhonov weight in effect is
// λ α_t/α_r. Alpha > 0 fixes α; the zero value uses the heuristic
// α = max_{i,j} (∇_{a_i} l)_j² of §3.4.2 per layer and minibatch, which
// reads the records' Grad. A layer whose Grad is all zero gets no step.
//
// Unlike K-FAC's, ACP's damping is always absolute (the λ of §3.4.2;
// Rules.AbsoluteDamping changes nothing): the heuristic α follows the
// residual, and it is the absolute λ that turns the step into an SGD step of
// rate η/λ where α Ā ≪ λ (docs/tuning.md).
//
// Defaults (zero values): η = 0.1, no momentum, λ = 0.01 absolute, refresh
// every 20 updates, no averaging, the norm constraint DefaultNormConstraint
// (relative to the risk). Cost per layer: the
// step, 2 n_out (n_in+1)² flops by triangular solves or, when the batch is
// small, 2n(n_in+1)(n_in+1+n_out) on the input side; a refresh, one syrk and
// a Cholesky factorization, n n_in² + n_in³/3 flops. No allocation in
// steady state.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (see KFAC).
//
// An ACP is not safe for concurrent use.
type ACP struct {
	Rules
	// Alpha is a fixed scale α > 0 of the output side; zero selects the
	// heuristic max_{i,j} (∇_{a_i} l)_j² of §3.4.2.
	Alpha float64
	// Decay in [0, 1) blends the statistics of successive refreshes into
	// moving averages with weight ε_k = min(1 − 1/k, Decay) on the old
	// value. Zero means no averaging, as algorithm 3.
	Decay float64

	e engine
}

// Validate returns an error, prefixed "optim: ACP:", describing the first
// invalid setting, or nil. Step returns the same error.
func (a *ACP) Validate() error {
	switch {
	case !finiteNonNeg(a.Alpha):
		return fmt.Errorf("optim: ACP: Alpha=%g, want finite and > 0 (0 for the heuristic)", a.Alpha)
	case !(a.Decay >= 0 && a.Decay < 1):
		return fmt.Errorf("optim: ACP: Decay=%g, want in [0, 1)", a.Decay)
	}
	_, err := a.Rules.resolve(acpDefaults)
	return err
}

// Step applies one update to every layer. It returns an error, leaving
// every parameter and the state of a unchanged (bit for bit, MarshalBinary
// included: the statistics, α and factorizations are rolled back, see
// curvature.Staged), for an invalid setting, NaN or Inf in a record, a
// factorization that fails even with the raised damping, a non-finite
// direction, or an error of Problem.Loss or Problem.GNVec before the update
// (see KFAC.Step).
func (a *ACP) Step(layers []*secondorder.Layer) error {
	if err := a.Validate(); err != nil {
		return err
	}
	for k, l := range layers {
		if l != nil && a.Alpha == 0 && l.Grad == nil {
			panic(fmt.Sprintf("optim: ACP: layer %d has no Grad, which the heuristic α needs (or set Alpha)", k))
		}
	}
	return a.e.step(layers, a.Rules, acpDefaults, a.newBlock)
}

// newBlock returns the block of a layer, made at the first Step and by
// UnmarshalBinary.
func (a *ACP) newBlock(int) curvature.Block {
	return &curvature.ACPBlock{Alpha: a.Alpha, Decay: a.Decay}
}

// settings returns the settings of a that a checkpoint holds, defaults
// filled in.
func (a *ACP) settings() []param {
	s := a.Rules.fill(acpDefaults)
	return s.settings(floatParam("Alpha", a.Alpha), floatParam("Decay", a.Decay))
}

// MarshalBinary returns a checkpoint of a (encoding.BinaryMarshaler) for
// UnmarshalBinary: its settings, defaults filled in, the number of updates,
// the current damping, the last Report, and for every layer its shape, the
// damping of the factorization in place, the previous update δ_prev, the
// velocities of the Extra parameters and the state of its
// curvature.ACPBlock, saved by the block's own MarshalBinary. An optimizer
// that never stepped has a checkpoint too. It returns the error of Validate
// for invalid settings, and an error when a block cannot be saved.
func (a *ACP) MarshalBinary() ([]byte, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a.e.marshal("optim.ACP", acpDefaults.name, a.settings())
}

// UnmarshalBinary restores into a (encoding.BinaryUnmarshaler) the state of
// a checkpoint written by MarshalBinary, so that the next Step continues
// exactly as the checkpointed optimizer would have; see
// KFAC.UnmarshalBinary. A setting that differs after defaults (Rules, Alpha,
// Decay) gives an error prefixed "optim: ACP:" naming it; the func-valued
// settings cannot be compared and must be set as they were. Corrupt data
// gives an error wrapping ErrCorruptCheckpoint. On any error a is left
// unchanged.
func (a *ACP) UnmarshalBinary(data []byte) error {
	if err := a.Validate(); err != nil {
		return err
	}
	e, err := a.e.unmarshal("optim.ACP", acpDefaults.name, data, a.settings(), a.newBlock)
	if err != nil {
		return err
	}
	a.e = e
	return nil
}

// Report returns the state after the last Step.
func (a *ACP) Report() Report { return a.e.reportNow(a.Rules, acpDefaults) }
