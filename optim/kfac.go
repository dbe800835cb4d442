package optim

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// Defaults of KFAC.
const (
	// DefaultKFACRate is η, the natural-gradient (Newton) step length.
	DefaultKFACRate = 1
	// DefaultKFACDamping is the relative damping λ (Rules.Damping).
	DefaultKFACDamping = 0.1
	// DefaultKFACInversePeriod is T3 of Martens & Grosse (2015, §8).
	DefaultKFACInversePeriod = 20
)

var kfacDefaults = methodDefaults{
	name:           "KFAC",
	rate:           DefaultKFACRate,
	damping:        DefaultKFACDamping,
	normConstraint: DefaultNormConstraint,
	statsPeriod:    1,
	inversePeriod:  DefaultKFACInversePeriod,
	warmUp:         true,
	needsBack:      true,
}

// KFAC is the Kronecker-factored approximate curvature method of Martens &
// Grosse (2015), thesis §3.5.1: every layer's block of the Fisher (or
// Gauss–Newton) matrix is approximated by curvature.KFACBlock,
//
//	F_l ≈ Ā ⊗ G,   Ā = E[h̃ h̃ᵀ],   G = E[g gᵀ],
//
// with moving averages of the factors (Decay), factored Tikhonov damping
// (kron.FactoredTikhonov), and the update of the layer's [W b]
//
//	U = (G + (√λ_l/π) I)⁻¹ [∇W ∇b] (Ā + π√λ_l I)⁻¹,   δ = −η U + μ δ_prev,
//
// followed by the step rules of Rules: the norm constraint η ← min(η,
// sqrt(C / ∇ᵀU)), optional Levenberg–Marquardt damping (AdaptDamping) and
// rate and momentum from the exact quadratic model (AutoRate).
//
// Each Step reads the records' GradW and GradB and, on the updates where the
// statistics are due (StatsDue), Input and Back: Back holds backpropagated
// curvature vectors (Monte-Carlo Fisher is the usual choice; see package
// curvature/network's Backprop), BackExamples ties them to examples, and Ā is
// estimated on the examples that Back covers (a leading sub-batch is
// Martens & Grosse's τ1). The inverses are refreshed at every update of the
// first InversePeriod updates (the warm-up), then every InversePeriod
// updates. Parameters in the layers' Extra get plain gradient steps with
// the same momentum.
//
// Defaults (zero values): η = 1 under the norm constraint
// η² ∇ᵀU ≤ DefaultNormConstraint · R (relative to the records' Risk), no
// momentum, relative damping λ = 0.1 (λ_l = λ·tr(Ā)tr(G)/((n_in+1)n_out)),
// statistics every update, inverses every 20 updates after the warm-up,
// Decay 0.95; docs/tuning.md says how they were chosen on the deep
// autoencoder, the MNIST classifier and the test problems of optimtest.
//
// Cost per layer, with n_A = n_in+1, n_G = n_out, m rows of Back: every
// update two triangular solves on each side, 2 n_G n_A (n_A + n_G) flops (or
// a multiple of the batch size on the batch side when that is smaller);
// every statistics update two syrk, m (n_A² + n_G²) flops; every refresh two
// Cholesky factorizations, (n_A³ + n_G³)/3 flops. Memory 5 (n_A² + n_G²)
// floats (curvature.KFACBlock: the factors' estimates, two copies of their
// averages, so that a refused step can be undone, and two factorizations).
// In steady state a Step does not allocate.
//
// KFAC keeps per-layer state by position: pass the layers in the same order
// at every Step. It is not safe for concurrent use.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly: MarshalBinary saves its settings and
// state, UnmarshalBinary restores them into a KFAC of the same settings.
type KFAC struct {
	Rules
	// Decay is the decay ε of the moving averages of the factors, in
	// [0, 1). Zero means curvature.DefaultDecay (0.95, Martens & Grosse §5).
	Decay float64

	e engine
}

// Validate returns an error, prefixed "optim: KFAC:", describing the first
// invalid setting, or nil. Step returns the same error.
func (k *KFAC) Validate() error {
	if !(k.Decay >= 0 && k.Decay < 1) {
		return fmt.Errorf("optim: KFAC: Decay=%g, want in [0, 1) (0 for %g)", k.Decay, curvature.DefaultDecay)
	}
	_, err := k.Rules.resolve(kfacDefaults)
	return err
}

// Step applies one K-FAC update to every layer. It panics for a shape
// mismatch. It returns an error, leaving the parameters and the state of k
// unchanged (bit for bit, MarshalBinary included: the factors' averages and
// factorizations are rolled back, see curvature.Staged), for an invalid
// setting, a missing capability (wrapping ErrMissingCapability), NaN or Inf
// in the records, a block that stays not positive definite, a non-finite
// direction, or an error of Problem.Loss or Problem.GNVec before the
// update. An error of the Loss evaluated after the update (AdaptDamping) is
// returned with the update applied.
func (k *KFAC) Step(layers []*secondorder.Layer) error {
	if err := k.Validate(); err != nil {
		return err
	}
	return k.e.step(layers, k.Rules, kfacDefaults, k.newBlock)
}

// newBlock returns the block of a layer, made at the first Step and by
// UnmarshalBinary.
func (k *KFAC) newBlock(int) curvature.Block { return &curvature.KFACBlock{Decay: k.Decay} }

// settings returns the settings of k that a checkpoint holds, defaults
// filled in.
func (k *KFAC) settings() []param {
	s := k.Rules.fill(kfacDefaults)
	return s.settings(floatParam("Decay", orFloat(k.Decay, curvature.DefaultDecay)))
}

// MarshalBinary returns a checkpoint of k (encoding.BinaryMarshaler) for
// UnmarshalBinary: its settings, defaults filled in, the number of updates,
// the current damping, the last Report, and for every layer its shape, the
// damping of the factorization in place, the previous update δ_prev, the
// velocities of the Extra parameters and the state of its
// curvature.KFACBlock (the factors' moving averages and their
// factorization), saved by the block's own MarshalBinary. An optimizer that
// never stepped has a checkpoint too. It returns the error of Validate for
// invalid settings, and an error when a block cannot be saved.
func (k *KFAC) MarshalBinary() ([]byte, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return k.e.marshal("optim.KFAC", kfacDefaults.name, k.settings())
}

// UnmarshalBinary restores into k (encoding.BinaryUnmarshaler) the state of
// a checkpoint written by MarshalBinary, so that the next Step, with layers
// of the recorded shapes and the same records, continues exactly (bit for
// bit) as the checkpointed optimizer would have; layers of other shapes
// panic as a shape change between steps does.
//
// The settings of k must be set first, to those of the checkpointed
// optimizer: an error, prefixed "optim: KFAC:", names the first numeric or
// boolean setting that differs after defaults ("checkpoint has
// Damping=0.1, this optimizer Damping=0.2"). The func-valued settings
// (Schedule, OnDampingRaised, Problem) cannot be compared: the caller must
// set the same ones. Data that is not a valid checkpoint of KFAC
// (truncated, altered, of another optimizer, with inconsistent shapes or
// values) gives an error wrapping ErrCorruptCheckpoint, and invalid settings
// the error of Validate. The blocks are restored into new blocks before
// anything is replaced: on any error k is left unchanged.
func (k *KFAC) UnmarshalBinary(data []byte) error {
	if err := k.Validate(); err != nil {
		return err
	}
	e, err := k.e.unmarshal("optim.KFAC", kfacDefaults.name, data, k.settings(), k.newBlock)
	if err != nil {
		return err
	}
	k.e = e
	return nil
}

// Needs reports what Step needs: Back (on the updates where StatsDue),
// Problem.Loss with AdaptDamping, Problem.GNVec with AutoRate.
func (k *KFAC) Needs() Needs {
	return Needs{Back: true, Loss: k.AdaptDamping, GNVec: k.AutoRate}
}

// StatsDue reports whether the next Step updates the factor statistics and
// so reads the records' Input and Back; a caller may skip computing Back
// when it is false.
func (k *KFAC) StatsDue() bool { return k.e.statsDue(k.Rules, kfacDefaults) }

// Report returns the state after the last Step.
func (k *KFAC) Report() Report { return k.e.reportNow(k.Rules, kfacDefaults) }

// Factors returns the current moving averages Ā and G of layer l, owned by
// k and valid until the next Step; nil before the first Step.
func (k *KFAC) Factors(l int) (a, g *mat.SymDense) {
	if l < 0 || l >= len(k.e.layers) {
		return nil, nil
	}
	return k.e.layers[l].block.(*curvature.KFACBlock).Factors()
}
