package optim

import (
	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/dist"
)

// DefaultSGDRate is the learning rate of SGD and Centered when Rate is zero.
const DefaultSGDRate = 0.01

// SGD is stochastic gradient descent (thesis §2.2) with optional classical
// or Nesterov momentum, the package's one momentum rule (Sutskever et al.
// 2013, eqs. 1–4):
//
//	v ← μ v − η ∇R,   θ ← θ + v                 (classical)
//	v ← μ v − η ∇R,   θ ← θ + μ v − η ∇R        (Nesterov, Bengio et al. 2013)
//
// W, B and the layers' Extra parameters (batch normalisation's γ and β) all
// get this update. Defaults (zero value): η = 0.01, no momentum. One fused
// pass over the parameters; no allocation after the first step.
//
// It implements encoding.BinaryMarshaler and encoding.BinaryUnmarshaler
// for checkpoints that resume exactly: MarshalBinary saves its settings and
// state, UnmarshalBinary restores them into a SGD of the same settings.
//
// An SGD is not safe for concurrent use.
type SGD struct {
	// Rate is the learning rate η; zero means DefaultSGDRate.
	Rate float64
	// Momentum is μ in [0, 1); zero means none.
	Momentum float64
	// Nesterov selects Nesterov momentum instead of classical momentum.
	Nesterov bool

	// Comm, if set with more than one worker, makes Step data-parallel
	// (package dist): the records' gradients are replaced by their means
	// over all workers' examples before the update. Nil is one process.
	Comm dist.Comm

	t  int
	st elemState
	g  gather
}

// Validate returns an error, prefixed "optim: SGD:", describing the first
// invalid setting, or nil. Step returns the same error.
func (s *SGD) Validate() error {
	return validate("SGD", rate("Rate", s.Rate), unit("Momentum", s.Momentum))
}

// Step applies one update to every layer from its GradW, GradB and the
// gradients of its Extra parameters. It returns an error, leaving the
// parameters unchanged, for an invalid setting.
func (s *SGD) Step(layers []*secondorder.Layer) error {
	err := startStep("SGD", layers, s, false, false)
	if err := allReduceRecords(s.Comm, &s.g, "SGD", layers, err, true, nil); err != nil {
		return err
	}
	eta, mu := orFloat(s.Rate, DefaultSGDRate), s.Momentum
	s.st.ensure("SGD", layers, false)
	for k, l := range layers {
		s.st.visit(k, l, func(p, g, v, _ []float64) {
			momentumRow(p, v, g, eta, mu, s.Nesterov)
		})
	}
	s.t++
	return nil
}

// Report returns the number of updates and the rate and momentum.
func (s *SGD) Report() Report {
	return Report{Updates: s.t, Rate: orFloat(s.Rate, DefaultSGDRate), Momentum: s.Momentum}
}

// settings appends to dst the settings that shape the update of SGD, in
// the order of its checkpoints, defaults filled in: Rate, Momentum, Nesterov.
func (s *SGD) settings(dst []param) []param {
	return append(dst,
		floatParam("Rate", orFloat(s.Rate, DefaultSGDRate)),
		floatParam("Momentum", s.Momentum),
		flagParam("Nesterov", s.Nesterov))
}

// MarshalBinary returns a checkpoint of s (encoding.BinaryMarshaler) for
// UnmarshalBinary: its settings, defaults filled in, the number of updates,
// and for every layer its shape (W, B and the lengths of the Extra
// parameters) and the velocity of every parameter. An optimizer that never
// stepped has a checkpoint too. It allocates the returned slice only, and
// returns the error of Validate for invalid settings.
func (s *SGD) MarshalBinary() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var buf [maxSettings]param
	return marshalElem("optim.SGD", s.settings(buf[:0]), s.t, &s.st, 1), nil
}

// UnmarshalBinary restores into s (encoding.BinaryUnmarshaler) the state of
// a checkpoint written by MarshalBinary, so that the next Step, with layers
// of the recorded shapes, continues exactly (bit for bit) as the
// checkpointed optimizer would have; layers of other shapes panic as a shape
// change between steps does. The settings of s must be set first, to those
// of the checkpointed optimizer: an error, prefixed "optim: SGD:", names
// the first setting that differs after defaults ("checkpoint has Rate=0.001,
// this optimizer Rate=0.002"). Data that is not a valid checkpoint of SGD
// (truncated, altered, of another optimizer, with shapes that are not
// positive or state arrays that do not match their shapes) gives an error
// wrapping ErrCorruptCheckpoint (internal/state's ErrCorrupt), and invalid
// settings the error of Validate. On any error s is left unchanged.
func (s *SGD) UnmarshalBinary(data []byte) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var buf [maxSettings]param
	t, st, err := unmarshalElem("SGD", data, s.settings(buf[:0]), 1, &s.st)
	if err != nil {
		return err
	}
	s.t, s.st = t, st
	return nil
}
