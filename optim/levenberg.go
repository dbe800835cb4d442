package optim

import (
	"fmt"
	"math"
)

// levenbergMarquardt returns the damping λ adapted by the rule of Martens &
// Grosse (2015) §6.5 from the risk h0 before and h1 after an update whose
// quadratic model predicted the change decrease = M(δ) − M(0),
//
//	ρ = (h1 − h0) / (M(δ) − M(0)),
//	λ ← λ/ω if ρ < 1/4,   λ ← ω λ if ρ > 3/4,   ω = (19/20)^T2,
//
// with T2 the period of the adaptation, and the ratio ρ. A model that
// predicts no decrease (M(δ) ≥ M(0)) or a non-finite ρ counts as ρ < 1/4 and
// is reported in reason. λ stays within [lo, hi] (Rules.MinDamping,
// MaxDamping).
func levenbergMarquardt(lambda, h0, h1, decrease float64, period int, lo, hi float64) (newLambda, rho float64, reason string) {
	rho = (h1 - h0) / decrease
	omega := math.Pow(19.0/20.0, float64(period))
	switch {
	case !(decrease < 0) || math.IsNaN(rho) || math.IsInf(rho, 0):
		reason = fmt.Sprintf("LM: model change %g and loss change %g give no usable ρ; damping raised", decrease, h1-h0)
		lambda /= omega
	case rho < 0.25:
		lambda /= omega
	case rho > 0.75:
		lambda *= omega
	}
	return min(max(lambda, lo), hi), rho, reason
}
