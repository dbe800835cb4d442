package optim

import (
	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// Preconditioned is a curvature-based optimizer composed, as gonum's
// optimize.GradientDescent of a Linesearcher and a StepSizer or an optax
// chain, of one curvature block per layer (package curvature: KFACBlock,
// ACPBlock, ExactBlock, DiagonalBlock, or any type implementing
// curvature.Block) and the shared step rules of Rules. KFAC, ACP, Newton and
// DiagonalNewton are Preconditioned optimizers with their own blocks and
// defaults; a new curvature approximation needs only a new Block.
//
// Defaults (zero values of Rules): η = 1, relative damping λ = 0.1, no
// momentum, the norm constraint DefaultNormConstraint (relative to the
// risk), statistics and refresh at every update.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly (see KFAC) when its blocks do (every
// block of package curvature does): each block's state is saved by its own
// MarshalBinary and restored by the UnmarshalBinary of a new block from
// NewBlock.
//
// A Preconditioned is not safe for concurrent use.
type Preconditioned struct {
	Rules
	// NewBlock returns the curvature block of layer j. It is called once per
	// layer at the first Step (again at the next Step when the first is
	// refused, its blocks forgotten, and by UnmarshalBinary, for the blocks
	// it restores), and is required.
	NewBlock func(layer int) curvature.Block
	// ReadsBack declares that the blocks read the records' Back (all but
	// ACPBlock do); Step then refuses records without Back.
	ReadsBack bool
	// Name names the method in messages; empty means "Preconditioned".
	Name string

	e engine
}

func (p *Preconditioned) defaults() methodDefaults {
	name := p.Name
	if name == "" {
		name = "Preconditioned"
	}
	return methodDefaults{name: name, rate: 1, damping: 0.1, normConstraint: DefaultNormConstraint, inversePeriod: 1, needsBack: p.ReadsBack}
}

// Validate returns an error describing the first invalid setting, or nil.
func (p *Preconditioned) Validate() error {
	_, err := p.Rules.resolve(p.defaults())
	return err
}

// Step applies one update to every layer (see KFAC.Step for the errors).
// A refused step leaves the parameters and the state of p unchanged when
// every block implements curvature.Staged (every block of package
// curvature does): the engine's own state is always restored, a block that
// implements it is rolled back, and a block that does not keeps the
// statistics of the refused step (its Update, Refresh, and any SetAlpha).
func (p *Preconditioned) Step(layers []*secondorder.Layer) error {
	if p.NewBlock == nil {
		panic("optim: Preconditioned: NewBlock is nil")
	}
	return p.e.step(layers, p.Rules, p.defaults(), p.NewBlock)
}

// settings returns the settings of p that a checkpoint holds, defaults
// filled in.
func (p *Preconditioned) settings() []param {
	d := p.defaults()
	s := p.Rules.fill(d)
	return s.settings(flagParam("ReadsBack", p.ReadsBack), textParam("Name", d.name))
}

// MarshalBinary returns a checkpoint of p (encoding.BinaryMarshaler) for
// UnmarshalBinary: its settings, defaults filled in (Rules, ReadsBack,
// Name), the number of updates, the current damping, the last Report, and
// for every layer its shape, the damping of the factorization in place, the
// previous update δ_prev, the velocities of the Extra parameters and the
// state of its block, saved by the block's own MarshalBinary. It returns
// the error of Validate for invalid settings, and an error naming the
// block's type when a block does not implement encoding.BinaryMarshaler.
// An optimizer that never stepped has a checkpoint too.
func (p *Preconditioned) MarshalBinary() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p.e.marshal("optim.Preconditioned", p.defaults().name, p.settings())
}

// UnmarshalBinary restores into p (encoding.BinaryUnmarshaler) the state of
// a checkpoint written by MarshalBinary, so that the next Step continues
// exactly as the checkpointed optimizer would have; see
// KFAC.UnmarshalBinary. Each layer's block is made by NewBlock, which must
// make blocks of the checkpointed type and settings (it cannot be
// compared), and restored by its UnmarshalBinary: a block that does not
// implement encoding.BinaryUnmarshaler gives an error naming its type, and
// one that refuses its state an error wrapping ErrCorruptCheckpoint. A
// setting that differs after defaults (Rules, ReadsBack, Name) gives an
// error naming it; the func-valued settings cannot be compared and must be
// set as they were. On any error p is left unchanged.
func (p *Preconditioned) UnmarshalBinary(data []byte) error {
	if err := p.Validate(); err != nil {
		return err
	}
	e, err := p.e.unmarshal("optim.Preconditioned", p.defaults().name, data, p.settings(), p.NewBlock)
	if err != nil {
		return err
	}
	p.e = e
	return nil
}

// Needs reports what Step needs.
func (p *Preconditioned) Needs() Needs {
	return Needs{Back: p.ReadsBack, Loss: p.AdaptDamping, GNVec: p.AutoRate}
}

// StatsDue reports whether the next Step updates the blocks' statistics.
func (p *Preconditioned) StatsDue() bool { return p.e.statsDue(p.Rules, p.defaults()) }

// Report returns the state after the last Step.
func (p *Preconditioned) Report() Report { return p.e.reportNow(p.Rules, p.defaults()) }
