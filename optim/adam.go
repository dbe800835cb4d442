package optim

import (
	"math"

	"github.com/secondorder/secondorder"
)

var _ Optimizer = (*Adam)(nil)

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
// Step. Every parameter of a layer gets this update: W from GradW, B from
// GradB and each Extra parameter (batch normalisation's γ and β) from its
// Grad. The zero value uses the paper's defaults. Cost: one fused pass over
// the parameters, no allocation after the first step.
type Adam struct {
	// Rate is the step size η; zero means 0.001 (the paper's default).
	// Negative is refused.
	Rate float64
	// Beta1 is the decay β₁ of the first moment, in [0, 1); zero means 0.9
	// (the paper's default), so β₁ = 0 itself cannot be asked for.
	Beta1 float64
	// Beta2 is the decay β₂ of the second moment, in [0, 1); zero means
	// 0.999 (the paper's default).
	Beta2 float64
	// Epsilon is ε; zero means 1e-8 (the paper's default). Negative is
	// refused.
	Epsilon float64

	t  int
	st elemState
}

func (o *Adam) settings() (eta, b1, b2, eps float64) {
	eta, b1, b2, eps = o.Rate, o.Beta1, o.Beta2, o.Epsilon
	checkRate("Adam", "learning rate", eta)
	checkRate("Adam", "epsilon", eps)
	checkUnit("Adam", "beta1", b1)
	checkUnit("Adam", "beta2", b2)
	if eta == 0 {
		eta = 0.001
	}
	if b1 == 0 {
		b1 = 0.9
	}
	if b2 == 0 {
		b2 = 0.999
	}
	if eps == 0 {
		eps = 1e-8
	}
	return eta, b1, b2, eps
}

// Step applies one update to every layer from its GradW, GradB and the
// gradients of its Extra parameters.
func (o *Adam) Step(layers []*secondorder.Layer) error {
	checkLayers("Adam", layers)
	eta, b1, b2, eps := o.settings()
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
