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
type Preconditioned struct {
	Rules
	// NewBlock returns the curvature block of layer j. It is called once per
	// layer at the first Step, and is required.
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
func (p *Preconditioned) Step(layers []*secondorder.Layer) error {
	if p.NewBlock == nil {
		panic("optim: Preconditioned: NewBlock is nil")
	}
	return p.e.step(layers, p.Rules, p.defaults(), p.NewBlock)
}

// Needs reports what Step needs.
func (p *Preconditioned) Needs() Needs {
	return Needs{Back: p.ReadsBack, Loss: p.AdaptDamping, GNVec: p.AutoRate}
}

// StatsDue reports whether the next Step updates the blocks' statistics.
func (p *Preconditioned) StatsDue() bool { return p.e.statsDue(p.Rules, p.defaults()) }

// Report returns the state after the last Step.
func (p *Preconditioned) Report() Report { return p.e.reportNow(p.Rules, p.defaults()) }
