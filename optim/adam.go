package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/dist"
)

// Defaults of Adam, the paper's.
const (
	DefaultAdamRate    = 0.001
	DefaultAdamBeta1   = 0.9
	DefaultAdamBeta2   = 0.999
	DefaultAdamEpsilon = 1e-8
)

// Adam is the method of Kingma & Ba (2015), "Adam: a method for stochastic
// optimization", algorithm 1, element by element with bias correction:
//
//	t ← t + 1
//	m ← β₁ m + (1 − β₁) g
//	v ← β₂ v + (1 − β₂) g²
//	m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
//	θ ← θ − η m̂ / (√v̂ + ε)
//
// computed in the equivalent form of the paper's §2, last paragraph, with
// η_t = η √(1 − β₂ᵗ) / (1 − β₁ᵗ) and ε̂ = ε √(1 − β₂ᵗ):
// θ ← θ − η_t m / (√v + ε̂). m and v start at zero and t counts the calls of
// Step. W, B and each Extra parameter get this update. Defaults (zero
// value): the paper's, η = 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-8. One fused
// pass over the parameters; no allocation after the first step.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly: MarshalBinary saves its settings and
// state, UnmarshalBinary restores them into an Adam of the same settings.
//
// An Adam is not safe for concurrent use.
type Adam struct {
	// Rate is the step size η; zero means DefaultAdamRate.
	Rate float64
	// Beta1 is the decay β₁ of the first moment, in [0, 1); zero means
	// DefaultAdamBeta1. Set NoMomentum for β₁ = 0.
	Beta1 float64
	// NoMomentum sets β₁ = 0 (no first-moment average; Beta1 must be zero).
	NoMomentum bool
	// Beta2 is the decay β₂ of the second moment, in [0, 1); zero means
	// DefaultAdamBeta2.
	Beta2 float64
	// Epsilon is ε; zero means DefaultAdamEpsilon.
	Epsilon float64

	// Comm, if set with more than one worker, makes Step data-parallel
	// (package dist): the records' gradients are replaced by their means
	// over all workers' examples before the update. Nil is one process.
	Comm dist.Comm

	t  int
	st elemState
	g  gather
}

// Validate returns an error, prefixed "optim: Adam:", describing the first
// invalid setting, or nil. Step returns the same error.
func (o *Adam) Validate() error {
	if o.NoMomentum && o.Beta1 != 0 {
		return fmt.Errorf("optim: Adam: NoMomentum with Beta1=%g; set one of them", o.Beta1)
	}
	return validate("Adam", rate("Rate", o.Rate), rate("Epsilon", o.Epsilon),
		unit("Beta1", o.Beta1), unit("Beta2", o.Beta2))
}

// Step applies one update to every layer from its GradW, GradB and the
// gradients of its Extra parameters. It returns an error, leaving the
// parameters unchanged, for an invalid setting.
func (o *Adam) Step(layers []*secondorder.Layer) error {
	err := startStep("Adam", layers, o, false, true)
	if err := allReduceRecords(o.Comm, &o.g, "Adam", layers, err, true, nil); err != nil {
		return err
	}
	eta, b1 := orFloat(o.Rate, DefaultAdamRate), orFloat(o.Beta1, DefaultAdamBeta1)
	b2, eps := orFloat(o.Beta2, DefaultAdamBeta2), orFloat(o.Epsilon, DefaultAdamEpsilon)
	if o.NoMomentum {
		b1 = 0
	}
	o.st.ensure("Adam", layers, true)
	o.t++
	t := float64(o.t)
	bc1 := 1 - math.Pow(b1, t)
	sbc2 := math.Sqrt(1 - math.Pow(b2, t))
	etaT := eta * sbc2 / bc1
	epsHat := eps * sbc2
	for k, l := range layers {
		o.st.visit(k, l, func(p, g, m, v []float64) {
			g, m, v = g[:len(p)], m[:len(p)], v[:len(p)]
			for j := range p {
				gj := g[j]
				mj := b1*m[j] + (1-b1)*gj
				vj := b2*v[j] + (1-b2)*gj*gj
				m[j], v[j] = mj, vj
				p[j] -= etaT * mj / (math.Sqrt(vj) + epsHat)
			}
		})
	}
	return nil
}

// Report returns the number of updates and the step size.
func (o *Adam) Report() Report {
	return Report{Updates: o.t, Rate: orFloat(o.Rate, DefaultAdamRate)}
}

// settings appends to dst the settings that shape the update of Adam, in
// the order of its checkpoints, defaults filled in: Rate, NoMomentum, Beta1 (0 with NoMomentum), Beta2, Epsilon.
func (o *Adam) settings(dst []param) []param {
	b1 := orFloat(o.Beta1, DefaultAdamBeta1)
	if o.NoMomentum {
		b1 = 0
	}
	return append(dst,
		floatParam("Rate", orFloat(o.Rate, DefaultAdamRate)),
		flagParam("NoMomentum", o.NoMomentum),
		floatParam("Beta1", b1),
		floatParam("Beta2", orFloat(o.Beta2, DefaultAdamBeta2)),
		floatParam("Epsilon", orFloat(o.Epsilon, DefaultAdamEpsilon)))
}

// MarshalBinary returns a checkpoint of o (encoding.BinaryMarshaler) for
// UnmarshalBinary: its settings, defaults filled in, the number of updates,
// and for every layer its shape (W, B and the lengths of the Extra
// parameters) and the first and second moments m and v of every parameter.
// An optimizer that never stepped has a checkpoint too. It allocates the
// returned slice only, and returns the error of Validate for invalid
// settings.
func (o *Adam) MarshalBinary() ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var buf [maxSettings]param
	return marshalElem("optim.Adam", o.settings(buf[:0]), o.t, &o.st, 2), nil
}

// UnmarshalBinary restores into o (encoding.BinaryUnmarshaler) the state of
// a checkpoint written by MarshalBinary, so that the next Step, with layers
// of the recorded shapes, continues exactly (bit for bit) as the
// checkpointed optimizer would have; layers of other shapes panic as a shape
// change between steps does. The settings of o must be set first, to those
// of the checkpointed optimizer: an error, prefixed "optim: Adam:", names
// the first setting that differs after defaults ("checkpoint has Rate=0.001,
// this optimizer Rate=0.002"). Data that is not a valid checkpoint of Adam
// (truncated, altered, of another optimizer, with shapes that are not
// positive or state arrays that do not match their shapes) gives an error
// wrapping ErrCorruptCheckpoint (internal/state's ErrCorrupt), and invalid
// settings the error of Validate. On any error o is left unchanged.
func (o *Adam) UnmarshalBinary(data []byte) error {
	if err := o.Validate(); err != nil {
		return err
	}
	var buf [maxSettings]param
	t, st, err := unmarshalElem("Adam", data, o.settings(buf[:0]), 2, &o.st)
	if err != nil {
		return err
	}
	o.t, o.st = t, st
	return nil
}
