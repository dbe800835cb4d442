package optim

import (
	"github.com/secondorder/secondorder"
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
type SGD struct {
	// Rate is the learning rate η; zero means DefaultSGDRate.
	Rate float64
	// Momentum is μ in [0, 1); zero means none.
	Momentum float64
	// Nesterov selects Nesterov momentum instead of classical momentum.
	Nesterov bool

	t  int
	st elemState
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
	if err := startStep("SGD", layers, s, false, false); err != nil {
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
