package optim

import (
	"fmt"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// Defaults of EKFAC.
const (
	// DefaultEKFACRate is η, the natural-gradient step length.
	DefaultEKFACRate = 1
	// DefaultEKFACDamping is the relative damping λ (Rules.Damping), in
	// units of the mean of the scaling S.
	DefaultEKFACDamping = 0.1
	// DefaultEKFACInversePeriod is the period, in updates, of the
	// eigendecompositions of the factors (Rules.InversePeriod); the
	// scaling is re-estimated at every statistics update in between, so
	// the basis may age longer than K-FAC's inverses (on the benchmark
	// autoencoder a refresh costs about 1.4 s, eight updates).
	DefaultEKFACInversePeriod = 50
)

var ekfacDefaults = methodDefaults{
	name:           "EKFAC",
	rate:           DefaultEKFACRate,
	damping:        DefaultEKFACDamping,
	normConstraint: DefaultNormConstraint,
	statsPeriod:    1,
	inversePeriod:  DefaultEKFACInversePeriod,
	doublingWarmUp: true,
	needsBack:      true,
}

// EKFAC is the eigenvalue-corrected K-FAC of George, Laurent, Bouthillier,
// Ballas & Vincent (2018): every layer's block is approximated by
// curvature.EKFACBlock, K-FAC's eigenbasis U = Q_A ⊗ Q_G with the second
// moments S of the per-example gradients in that basis as eigenvalues,
//
//	F_l ≈ U diag(vec S) Uᵀ,   U = (Q_Gᵀ [∇W ∇b] Q_A) ./ (S + λ_l),   δ = −η Q_G U Q_Aᵀ + μ δ_prev,
//
// followed by the step rules of Rules (norm constraint, optional
// Levenberg–Marquardt damping and quadratic-model rate and momentum). The
// eigenbasis is recomputed at updates 1, 2, 4, 8, … of the first
// InversePeriod updates (a doubling warm-up: an eigendecomposition costs
// several Cholesky factorizations), then every InversePeriod updates; S is
// re-estimated at every statistics update, which is what lets the basis
// age between refreshes. Records are those of KFAC: GradW, GradB, and
// Input and Back on the updates where the statistics are due.
//
// Defaults (zero values): η = 1 under the norm constraint
// η² ∇ᵀU ≤ DefaultNormConstraint · R, no momentum, relative damping
// λ = 0.1 (λ_l = λ·mean(S)), statistics every update, eigenbases every 50
// updates after the warm-up, Decay 0.95 for the factors and S.
//
// Cost per layer, with n_A = n_in+1, n_G = n_out, m rows of Back: every
// update the rotation back from the eigenbasis, 2 n_G n_A (n_A + n_G) flops
// (as K-FAC's gradient-side solves), and the rotation into it, as much
// again or, from Grad and Input, 2n(n_A² + n_G² + n_A n_G); every statistics update K-FAC's two syrk and the
// rotations of the inputs and of Back, 2 m (n_A² + n_G²) more; every
// refresh two symmetric eigendecompositions, several times K-FAC's
// Cholesky factorizations. See curvature.EKFACBlock for the memory.
//
// EKFAC keeps per-layer state by position: pass the layers in the same
// order at every Step. It is not safe for concurrent use. It implements
// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler for checkpoints
// that resume exactly (see KFAC).
type EKFAC struct {
	Rules
	// Decay is ε of the moving averages of the factors and of S, in
	// [0, 1). Zero means curvature.DefaultDecay (0.95).
	Decay float64

	e engine
}

// Validate returns an error, prefixed "optim: EKFAC:", describing the
// first invalid setting, or nil. Step returns the same error.
func (k *EKFAC) Validate() error {
	if !(k.Decay >= 0 && k.Decay < 1) {
		return fmt.Errorf("optim: EKFAC: Decay=%g, want in [0, 1) (0 for %g)", k.Decay, curvature.DefaultDecay)
	}
	_, err := k.Rules.resolve(ekfacDefaults)
	return err
}

// Step applies one EKFAC update to every layer; its errors, and the
// guarantee that a refused step changes nothing, are those of KFAC.Step.
func (k *EKFAC) Step(layers []*secondorder.Layer) error {
	if err := k.Validate(); err != nil {
		return err
	}
	return k.e.step(layers, k.Rules, ekfacDefaults, k.newBlock)
}

func (k *EKFAC) newBlock(int) curvature.Block { return &curvature.EKFACBlock{Decay: k.Decay} }

func (k *EKFAC) settings() []param {
	s := k.Rules.fill(ekfacDefaults)
	return s.settings(floatParam("Decay", orFloat(k.Decay, curvature.DefaultDecay)))
}

// MarshalBinary returns a checkpoint of k (encoding.BinaryMarshaler), as
// KFAC.MarshalBinary does, with the state of every curvature.EKFACBlock.
func (k *EKFAC) MarshalBinary() ([]byte, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	return k.e.marshal("optim.EKFAC", ekfacDefaults.name, k.settings())
}

// UnmarshalBinary restores into k (encoding.BinaryUnmarshaler) a
// checkpoint written by MarshalBinary; see KFAC.UnmarshalBinary.
func (k *EKFAC) UnmarshalBinary(data []byte) error {
	if err := k.Validate(); err != nil {
		return err
	}
	e, err := k.e.unmarshal("optim.EKFAC", ekfacDefaults.name, data, k.settings(), k.newBlock)
	if err != nil {
		return err
	}
	k.e = e
	return nil
}

// Needs reports what Step needs: Back (on the updates where StatsDue),
// Problem.Loss with AdaptDamping, Problem.GNVec with AutoRate.
func (k *EKFAC) Needs() Needs {
	return Needs{Back: true, Loss: k.AdaptDamping, GNVec: k.AutoRate}
}

// StatsDue reports whether the next Step updates the statistics and so
// reads the records' Input and Back.
func (k *EKFAC) StatsDue() bool { return k.e.statsDue(k.Rules, ekfacDefaults) }

// Report returns the state after the last Step.
func (k *EKFAC) Report() Report { return k.e.reportNow(k.Rules, ekfacDefaults) }
