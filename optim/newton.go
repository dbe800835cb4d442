package optim

import (
	"fmt"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// Defaults of Newton.
const (
	// DefaultNewtonRate is η, the full Newton step.
	DefaultNewtonRate = 1
	// DefaultNewtonDamping is the relative Tikhonov damping λ, as KFAC's.
	DefaultNewtonDamping = 0.1
	// DefaultNewtonMaxParams is the largest layer, in parameters, whose
	// block Newton agrees to build: a 200 MB block and a Cholesky
	// factorization of about 4·10¹⁰ flops.
	DefaultNewtonMaxParams = 5000
)

var newtonDefaults = methodDefaults{
	name:           "Newton",
	rate:           DefaultNewtonRate,
	damping:        DefaultNewtonDamping,
	normConstraint: DefaultNormConstraint,
	inversePeriod:  1,
	needsBack:      true,
}

// Newton is the block-diagonal Gauss–Newton (or Fisher) method of thesis
// §3.1.6 with the Tikhonov damping of §3.1.3: every affine layer is updated
// with its own exact curvature block (curvature.ExactBlock, eq. 3.3.2),
// cross-layer terms ignored,
//
//	θ ← θ − η (B + λ_l I)⁻¹ ∇θ,   θ = [vec(W); b],
//
// built at every Step from the record's Input, Back, BackScale and
// BackExamples; what B is (exact GN or Fisher, a Monte-Carlo estimate)
// depends on what the caller put in Back. Rules adds momentum, the norm
// constraint and damping adaptation when asked for.
//
// Defaults (zero values): η = 1, relative damping λ = 0.1 (λ_l = λ·tr(B)/P),
// no momentum, the norm constraint DefaultNormConstraint (relative to the
// risk), MaxParams 5000. Cost per layer with
// P = n_out(n_in+1) parameters and m rows of Back: the block, O(m P²), and
// its Cholesky factorization, P³/3 flops, at every Step, with 4P² floats of
// memory (curvature.ExactBlock: two copies of the block, so that a refused
// step can be undone, and two Cholesky factors): for small networks. A layer with more than MaxParams parameters is
// refused with an error.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (see KFAC).
//
// A Newton is not safe for concurrent use.
type Newton struct {
	Rules
	// MaxParams is the largest number of parameters n_out(n_in+1) of a
	// layer. Zero means DefaultNewtonMaxParams.
	MaxParams int

	e engine
}

// Validate returns an error, prefixed "optim: Newton:", describing the
// first invalid setting, or nil. Step returns the same error.
func (nw *Newton) Validate() error {
	if nw.MaxParams < 0 {
		return fmt.Errorf("optim: Newton: MaxParams=%d, want > 0 (0 for %d)", nw.MaxParams, DefaultNewtonMaxParams)
	}
	_, err := nw.Rules.resolve(newtonDefaults)
	return err
}

// Step applies one damped block Newton update to every layer. It returns an
// error, leaving every parameter and the state of nw unchanged (bit for
// bit, MarshalBinary included: the blocks and their factorizations are
// rolled back, see curvature.Staged), for an invalid setting, a layer
// larger than MaxParams, a missing Back (wrapping ErrMissingCapability), NaN
// or Inf in the records, a block that stays not positive definite, a
// non-finite direction, or an error of Problem.Loss or Problem.GNVec before
// the update (see KFAC.Step).
func (nw *Newton) Step(layers []*secondorder.Layer) error {
	if err := nw.Validate(); err != nil {
		return err
	}
	maxP := orInt(nw.MaxParams, DefaultNewtonMaxParams)
	for j, l := range layers {
		if l == nil || l.W == nil {
			continue // checkLayers panics
		}
		out, in := l.Dims()
		if p := out * (in + 1); p > maxP {
			return fmt.Errorf("optim: Newton: layer %d (%d×%d) has %d parameters, more than MaxParams=%d (its block would take %s); use smaller layers or K-FAC",
				j, out, in, p, maxP, formatBytes(8*float64(p)*float64(p)))
		}
	}
	return nw.e.step(layers, nw.Rules, newtonDefaults, nw.newBlock)
}

// newBlock returns the block of a layer, made at the first Step and by
// UnmarshalBinary.
func (nw *Newton) newBlock(int) curvature.Block { return &curvature.ExactBlock{} }

// settings returns the settings of nw that a checkpoint holds, defaults
// filled in.
func (nw *Newton) settings() []param {
	s := nw.Rules.fill(newtonDefaults)
	return s.settings(intParam("MaxParams", orInt(nw.MaxParams, DefaultNewtonMaxParams)))
}

// MarshalBinary returns a checkpoint of nw (encoding.BinaryMarshaler) for
// UnmarshalBinary: its settings, defaults filled in, the number of updates,
// the current damping, the last Report, and for every layer its shape, the
// damping of the factorization in place, the previous update δ_prev, the
// velocities of the Extra parameters and the state of its
// curvature.ExactBlock, saved by the block's own MarshalBinary. An
// optimizer that never stepped has a checkpoint too. It returns the error
// of Validate for invalid settings, and an error when a block cannot be
// saved.
func (nw *Newton) MarshalBinary() ([]byte, error) {
	if err := nw.Validate(); err != nil {
		return nil, err
	}
	return nw.e.marshal("optim.Newton", newtonDefaults.name, nw.settings())
}

// UnmarshalBinary restores into nw (encoding.BinaryUnmarshaler) the state
// of a checkpoint written by MarshalBinary, so that the next Step continues
// exactly as the checkpointed optimizer would have; see
// KFAC.UnmarshalBinary. A setting that differs after defaults (Rules,
// MaxParams) gives an error prefixed "optim: Newton:" naming it; the
// func-valued settings cannot be compared and must be set as they were.
// Corrupt data gives an error wrapping ErrCorruptCheckpoint. On any error nw
// is left unchanged.
func (nw *Newton) UnmarshalBinary(data []byte) error {
	if err := nw.Validate(); err != nil {
		return err
	}
	e, err := nw.e.unmarshal("optim.Newton", newtonDefaults.name, data, nw.settings(), nw.newBlock)
	if err != nil {
		return err
	}
	nw.e = e
	return nil
}

// Needs reports that Newton needs Back in every record.
func (nw *Newton) Needs() Needs {
	return Needs{Back: true, Loss: nw.AdaptDamping, GNVec: nw.AutoRate}
}

// Report returns the state after the last Step.
func (nw *Newton) Report() Report { return nw.e.reportNow(nw.Rules, newtonDefaults) }

// formatBytes formats a number of bytes with an SI unit.
func formatBytes(b float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	u := 0
	for b >= 1000 && u < len(units)-1 {
		b /= 1000
		u++
	}
	return fmt.Sprintf("%.3g %s", b, units[u])
}
