package optim

import (
	"math"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/dist"
)

// Defaults of RMSProp.
const (
	// DefaultRMSPropRate is η (Keras, PyTorch and TensorFlow's default).
	DefaultRMSPropRate = 0.001
	// DefaultRMSPropRho is ρ, the value of the lecture.
	DefaultRMSPropRho = 0.9
	// DefaultRMSPropEpsilon is ε.
	DefaultRMSPropEpsilon = 1e-8
)

// RMSProp divides the gradient by a running root mean square of its recent
// values (Tieleman & Hinton 2012, Coursera "Neural networks for machine
// learning", lecture 6.5), element by element,
//
//	r ← ρ r + (1 − ρ) g²,   d = g / (√r + ε),
//
// and applies the package's momentum rule to d ("RMSProp with momentum" of
// the lecture and TensorFlow): v ← μ v − η d, θ ← θ + v (θ ← θ − η d
// without momentum). r and v start at zero. W, B and each Extra parameter
// get this update. Defaults (zero value): η = 0.001, ρ = 0.9, ε = 1e-8, no
// momentum. One fused pass; no allocation after the first step.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly: MarshalBinary saves its settings and
// state, UnmarshalBinary restores them into a RMSProp of the same settings.
//
// An RMSProp is not safe for concurrent use.
type RMSProp struct {
	// Rate is the learning rate η; zero means DefaultRMSPropRate.
	Rate float64
	// Rho is the decay ρ of the running mean square, in [0, 1); zero means
	// DefaultRMSPropRho.
	Rho float64
	// Epsilon is ε, added to √r; zero means DefaultRMSPropEpsilon.
	Epsilon float64
	// Momentum is μ in [0, 1); zero means none.
	Momentum float64

	// Comm, if set with more than one worker, makes Step data-parallel
	// (package dist): the records' gradients are replaced by their means
	// over all workers' examples before the update. Nil is one process.
	Comm dist.Comm

	t  int
	st elemState
	g  gather
}

// Validate returns an error, prefixed "optim: RMSProp:", describing the
// first invalid setting, or nil. Step returns the same error.
func (o *RMSProp) Validate() error {
	return validate("RMSProp", rate("Rate", o.Rate), rate("Epsilon", o.Epsilon),
		unit("Rho", o.Rho), unit("Momentum", o.Momentum))
}

// Step applies one update to every layer from its GradW, GradB and the
// gradients of its Extra parameters. It returns an error, leaving the
// parameters unchanged, for an invalid setting.
func (o *RMSProp) Step(layers []*secondorder.Layer) error {
	err := startStep("RMSProp", layers, o, false, true)
	if err := allReduceRecords(o.Comm, &o.g, "RMSProp", layers, err, true, nil); err != nil {
		return err
	}
	eta, rho := orFloat(o.Rate, DefaultRMSPropRate), orFloat(o.Rho, DefaultRMSPropRho)
	eps, mu := orFloat(o.Epsilon, DefaultRMSPropEpsilon), o.Momentum
	o.st.ensure("RMSProp", layers, true)
	for k, l := range layers {
		o.st.visit(k, l, func(p, g, r, v []float64) {
			g, r, v = g[:len(p)], r[:len(p)], v[:len(p)]
			for j := range p {
				rj := rho*r[j] + (1-rho)*g[j]*g[j]
				r[j] = rj
				var dp float64
				v[j], dp = momentum(v[j], g[j]/(math.Sqrt(rj)+eps), eta, mu, false)
				p[j] += dp
			}
		})
	}
	o.t++
	return nil
}

// Report returns the number of updates, the rate and the momentum.
func (o *RMSProp) Report() Report {
	return Report{Updates: o.t, Rate: orFloat(o.Rate, DefaultRMSPropRate), Momentum: o.Momentum}
}

// settings appends to dst the settings that shape the update of RMSProp, in
// the order of its checkpoints, defaults filled in: Rate, Rho, Epsilon, Momentum.
func (o *RMSProp) settings(dst []param) []param {
	return append(dst,
		floatParam("Rate", orFloat(o.Rate, DefaultRMSPropRate)),
		floatParam("Rho", orFloat(o.Rho, DefaultRMSPropRho)),
		floatParam("Epsilon", orFloat(o.Epsilon, DefaultRMSPropEpsilon)),
		floatParam("Momentum", o.Momentum))
}

// MarshalBinary returns a checkpoint of o (encoding.BinaryMarshaler) for
// UnmarshalBinary: its settings, defaults filled in, the number of updates,
// and for every layer its shape (W, B and the lengths of the Extra
// parameters) and the running mean square r and the velocity v of every
// parameter. An optimizer that never stepped has a checkpoint too. It
// allocates the returned slice only, and returns the error of Validate for
// invalid settings.
func (o *RMSProp) MarshalBinary() ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var buf [maxSettings]param
	return marshalElem("optim.RMSProp", o.settings(buf[:0]), o.t, &o.st, 2), nil
}

// UnmarshalBinary restores into o (encoding.BinaryUnmarshaler) the state of
// a checkpoint written by MarshalBinary, so that the next Step, with layers
// of the recorded shapes, continues exactly (bit for bit) as the
// checkpointed optimizer would have; layers of other shapes panic as a shape
// change between steps does. The settings of o must be set first, to those
// of the checkpointed optimizer: an error, prefixed "optim: RMSProp:", names
// the first setting that differs after defaults ("checkpoint has Rate=0.001,
// this optimizer Rate=0.002"). Data that is not a valid checkpoint of RMSProp
// (truncated, altered, of another optimizer, with shapes that are not
// positive or state arrays that do not match their shapes) gives an error
// wrapping ErrCorruptCheckpoint (internal/state's ErrCorrupt), and invalid
// settings the error of Validate. On any error o is left unchanged.
func (o *RMSProp) UnmarshalBinary(data []byte) error {
	if err := o.Validate(); err != nil {
		return err
	}
	var buf [maxSettings]param
	t, st, err := unmarshalElem("RMSProp", data, o.settings(buf[:0]), 2, &o.st)
	if err != nil {
		return err
	}
	o.t, o.st = t, st
	return nil
}
