package optim

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
)

// TestLevenbergMarquardt checks the rule of Martens & Grosse (2015) §6.5 with
// fixed numbers: ρ = (h1 − h0)/(M(δ) − M(0)), λ ← λ/ω for ρ < 1/4, λ ← ωλ
// for ρ > 3/4, unchanged for 1/4 ≤ ρ ≤ 3/4 (both bounds included),
// ω = (19/20)^T2.
func TestLevenbergMarquardt(t *testing.T) {
	const h0, lambda = 10.0, 0.5
	for _, tc := range []struct {
		name     string
		h1, dec  float64
		period   int
		rho, mul float64 // ρ and λ after/λ before
	}{
		{"bad", 9.9, -1, 1, 0.1, 20.0 / 19},
		{"negative", 10.5, -1, 1, -0.5, 20.0 / 19},
		{"just below 1/4", 10 - 0.2499, -1, 1, 0.2499, 20.0 / 19},
		{"1/4", 9, -4, 1, 0.25, 1},
		{"middle", 9.5, -1, 1, 0.5, 1},
		{"3/4", 7, -4, 1, 0.75, 1},
		{"just above 3/4", 10 - 0.7501, -1, 1, 0.7501, 19.0 / 20},
		{"good", 9.1, -1, 1, 0.9, 19.0 / 20},
		{"better than the model", 7, -2, 1, 1.5, 19.0 / 20},
		{"good, T2 = 5", 8.2, -2, 5, 0.9, 0.95 * 0.95 * 0.95 * 0.95 * 0.95},
		{"bad, T2 = 5", 9.8, -2, 5, 0.1, 1 / (0.95 * 0.95 * 0.95 * 0.95 * 0.95)},
		{"middle, T2 = 20", 9, -2, 20, 0.5, 1},
		{"good, T2 = 20", 9, -1, 20, 1, math.Pow(0.95, 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rho, reason := levenbergMarquardt(lambda, h0, tc.h1, tc.dec, tc.period, 0, math.Inf(1))
			if !scalar.EqualWithinAbsOrRel(rho, tc.rho, 1e-12, 1e-12) {
				t.Errorf("ρ = %g, want %g", rho, tc.rho)
			}
			if !scalar.EqualWithinRel(got/lambda, tc.mul, 1e-14) {
				t.Errorf("λ multiplied by %g, want %g", got/lambda, tc.mul)
			}
			if reason != "" {
				t.Errorf("reason %q for a usable ρ", reason)
			}
		})
	}
}

// TestLevenbergMarquardtNoUsableRho: a model that predicts no decrease
// (M(δ) − M(0) ≥ 0), or a non-finite ρ, counts as ρ < 1/4: λ ← λ/ω, with a
// reason.
func TestLevenbergMarquardtNoUsableRho(t *testing.T) {
	for _, tc := range []struct {
		name    string
		h1, dec float64
	}{
		{"zero model change", 9, 0},
		{"model predicts an increase", 9.5, 1},     // ρ = −0.5 would read as "bad" anyway
		{"model increase, loss increase", 10.5, 1}, // ρ = 0.5 would read as "middle"
		{"NaN loss", math.NaN(), -1},
		{"infinite loss", math.Inf(1), -1},
		{"NaN model", 9, math.NaN()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, reason := levenbergMarquardt(0.5, 10, tc.h1, tc.dec, 2, 0, math.Inf(1))
			if want := 0.5 / (0.95 * 0.95); !scalar.EqualWithinRel(got, want, 1e-14) {
				t.Errorf("λ = %g, want λ/ω = %g", got, want)
			}
			if !strings.HasPrefix(reason, "LM: ") || !strings.Contains(reason, "damping raised") {
				t.Errorf("reason %q, want an LM fallback", reason)
			}
		})
	}
}

// TestLevenbergMarquardtBounds: λ stays within the bounds given (here
// [1e-16, 1e16]).
func TestLevenbergMarquardtBounds(t *testing.T) {
	for _, tc := range []struct {
		name       string
		lambda, h1 float64
		want       float64
		rhoGood    bool
	}{
		{"lower bound", 1e-16, 9, 1e-16, true},
		{"lowered past the lower bound", 1.01e-16, 9, 1e-16, true}, // 0.95 · 1.01e-16 < 1e-16
		{"upper bound", 1e16, 9.9, 1e16, false},
		{"raised past the upper bound", 0.99e16, 9.9, 1e16, false}, // 0.99e16/0.95 > 1e16
		{"inside", 1, 9, 0.95, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, rho, _ := levenbergMarquardt(tc.lambda, 10, tc.h1, -1, 1, 1e-16, 1e16)
			if (rho > 0.75) != tc.rhoGood {
				t.Fatalf("ρ = %g: the case does not test what it says", rho)
			}
			if !scalar.EqualWithinRel(got, tc.want, 1e-14) {
				t.Errorf("λ = %g, want %g", got, tc.want)
			}
		})
	}
	if got, _, _ := levenbergMarquardt(1e-16, 10, 9, -1, 1, 1e-16, 1e16); got != 1e-16 {
		t.Errorf("λ = %g at the lower bound", got)
	}
	if got, _, _ := levenbergMarquardt(1e16, 10, 11, -1, 1, 1e-16, 1e16); got != 1e16 {
		t.Errorf("λ = %g at the upper bound", got)
	}
}
