package optim

import (
	"fmt"
	"math"

	"github.com/secondorder/secondorder"
)

// rateMomentum returns the learning rate α and momentum μ that minimize the
// exact quadratic model of the risk (Martens & Grosse 2015 §7) along the
// preconditioned direction U and the previous update δ₀,
//
//	M(δ) − M(0) = ½ δᵀ(F + Λ)δ + ∇ᵀδ,   δ = −α U + μ δ₀,
//
// a 2×2 linear system in (α, μ),
//
//	[UᵀCU  −UᵀCδ₀] [α]   [ ∇ᵀU ]
//	[−δ₀ᵀCU δ₀ᵀCδ₀] [μ] = [−∇ᵀδ₀],   C = F + Λ,
//
// given a11 = UᵀCU, a12 = −UᵀCδ₀, a22 = δ₀ᵀCδ₀, gu = ∇ᵀU and gp = ∇ᵀδ₀, with
// μ kept in [0, maxMu]: a momentum of the 2×2 solution outside that range is
// clipped to it and α re-chosen for the clipped μ, α = (∇ᵀU − μ a12)/a11
// (clipped reports it). It also returns the model change M(δ) − M(0) of that
// step. When the system is not positive definite (non-positive curvature,
// collinear directions) or gives a non-positive α, it falls back to the best
// α along U alone with μ = 0; when that is not positive and finite either,
// ok is false. reason says why a fallback was taken ("" when none was).
func rateMomentum(a11, a12, a22, gu, gp float64, hasPrev bool, maxMu float64) (alpha, mu, decrease float64, clipped, ok bool, reason string) {
	b1, b2 := -gu, gp
	model := func(alpha, mu float64) float64 {
		return 0.5*(alpha*alpha*a11+2*alpha*mu*a12+mu*mu*a22) + b1*alpha + b2*mu
	}
	if hasPrev && a11 > 0 && a22 > 0 {
		det := a11*a22 - a12*a12
		if det > 1e-12*a11*a22 && !math.IsInf(det, 0) {
			alpha = -(a22*b1 - a12*b2) / det
			mu = -(a11*b2 - a12*b1) / det
			if !math.IsNaN(mu) && !math.IsInf(mu, 0) && (mu < 0 || mu > maxMu) {
				mu = min(max(mu, 0), maxMu)
				alpha = (gu - mu*a12) / a11
				clipped = true
			}
			if alpha > 0 && !math.IsInf(alpha, 0) && !math.IsNaN(mu) && !math.IsInf(mu, 0) {
				return alpha, mu, model(alpha, mu), clipped, true, ""
			}
			reason = "AutoRate: the 2×2 model gives a non-positive rate; momentum dropped"
		} else {
			reason = "AutoRate: the 2×2 model is not positive definite; momentum dropped"
		}
	} else if hasPrev {
		reason = "AutoRate: non-positive curvature along the update; momentum dropped"
	}
	if a11 > 0 && !math.IsInf(a11, 0) {
		alpha = -b1 / a11
		if alpha > 0 && !math.IsInf(alpha, 0) {
			return alpha, 0, 0.5 * b1 * alpha, false, true, reason
		}
	}
	return 0, 0, math.NaN(), false, false, fmt.Sprintf("AutoRate: curvature %g and slope %g along the direction give no positive rate; fixed Rate and Momentum used", a11, -gu)
}

// normBound returns the bound on η² ∇ᵀU of the norm constraint in the
// units of the loss: C R with R the records' Risk (read from the last
// layer), C with AbsoluteNormConstraint, +Inf without a constraint. It
// returns an error wrapping ErrMissingCapability when the relative
// constraint meets records without a risk, and an error when the risk is
// negative or not finite.
func normBound(s *rules, layers []*secondorder.Layer) (float64, error) {
	if math.IsInf(s.c, 1) || s.AbsoluteNormConstraint {
		return s.c, nil
	}
	r := layers[len(layers)-1].Risk
	switch {
	case r == 0:
		return 0, missingCapability(s.d.name, "the records' Risk, read by the norm constraint (relative to the risk; package nn's Backward sets it): set Layer.Risk to the minibatch's mean loss, or set AbsoluteNormConstraint, or NormConstraint = +Inf")
	case !(r > 0) || math.IsInf(r, 1):
		return 0, fmt.Errorf("optim: %s: the records' Risk is %g, want finite and > 0; parameters left unchanged", s.d.name, r)
	}
	return s.c * r, nil
}

// constrainRate returns min(η, sqrt(C / ∇ᵀU)), the rate that keeps the
// squared norm η² ∇ᵀU of the update's new part in the damped metric within
// the norm constraint C (Ba, Grosse & Martens 2017), and whether it lowered
// η. ∇ᵀU > 0 for a positive definite metric.
func constrainRate(eta, c, gu float64) (float64, bool) {
	if eta*eta*gu > c {
		return math.Sqrt(c / gu), true
	}
	return eta, false
}
