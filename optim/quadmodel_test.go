package optim

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"
)

// quadModel is M(α, μ) − M(0) = ½ xᵀAx + bᵀx for x = (α, μ),
// A = [[a11, a12], [a12, a22]] and b = (−∇ᵀU, ∇ᵀδ₀): the quadratic model of
// δ = −αU + μδ₀ written out.
func quadModel(a11, a12, a22, gu, gp, alpha, mu float64) float64 {
	return 0.5*(a11*alpha*alpha+2*a12*alpha*mu+a22*mu*mu) - gu*alpha + gp*mu
}

// TestRateMomentumSolve: with a positive definite 2×2 model and a positive
// rate, (α, μ) is the solution of A x = −b found here by LU (mat.Dense.Solve),
// and the returned decrease is M at that point. With a11 = 4, a12 = −1,
// a22 = 2, ∇ᵀU = 3 (A⁻¹ = [[2, 1], [1, 4]]/7) the solutions are worked by
// hand.
func TestRateMomentumSolve(t *testing.T) {
	for _, tc := range []struct {
		a11, a12, a22, gu, gp float64
		hand                  []float64 // (α, μ) worked by hand, or nil
	}{
		// −b = (3, −0.5): x = (11/14, 1/7).
		{4, -1, 2, 3, 0.5, []float64{11.0 / 14, 1.0 / 7}},
		// −b = (3, −0.2): x = [[2, 1], [1, 4]] (3, −0.2) / 7 = (5.8, 2.2)/7.
		{4, -1, 2, 3, 0.2, []float64{5.8 / 7, 2.2 / 7}},
		{2.5, 0.7, 1.3, 0.4, -0.2, nil},
		{1e-3, 2e-4, 5e-3, 1e-2, -3e-3, nil},
	} {
		alpha, mu, dec, clipped, ok, reason := rateMomentum(tc.a11, tc.a12, tc.a22, tc.gu, tc.gp, true, DefaultMaxMomentum)
		if !ok || reason != "" || clipped {
			t.Fatalf("%+v: ok %v, reason %q, want the 2×2 solution", tc, ok, reason)
		}
		a := mat.NewDense(2, 2, []float64{tc.a11, tc.a12, tc.a12, tc.a22})
		var x mat.VecDense
		if err := x.SolveVec(a, mat.NewVecDense(2, []float64{tc.gu, -tc.gp})); err != nil {
			t.Fatal(err)
		}
		if !scalar.EqualWithinRel(alpha, x.AtVec(0), 1e-13) || !scalar.EqualWithinAbsOrRel(mu, x.AtVec(1), 1e-15, 1e-13) {
			t.Errorf("%+v: α, μ = %g, %g, want %g, %g (LU)", tc, alpha, mu, x.AtVec(0), x.AtVec(1))
		}
		if tc.hand != nil && (!scalar.EqualWithinRel(alpha, tc.hand[0], 1e-14) || !scalar.EqualWithinAbsOrRel(mu, tc.hand[1], 1e-15, 1e-14)) {
			t.Errorf("%+v: α, μ = %g, %g, want %g, %g (by hand)", tc, alpha, mu, tc.hand[0], tc.hand[1])
		}
		m := quadModel(tc.a11, tc.a12, tc.a22, tc.gu, tc.gp, x.AtVec(0), x.AtVec(1))
		if !scalar.EqualWithinRel(dec, m, 1e-12) || !(dec < 0) {
			t.Errorf("%+v: decrease %g, want M(α, μ) − M(0) = %g < 0", tc, dec, m)
		}
		// The 2×2 minimum is below the best step along U alone.
		if m1 := -0.5 * tc.gu * tc.gu / tc.a11; !(dec <= m1) {
			t.Errorf("%+v: decrease %g above the one-dimensional minimum %g", tc, dec, m1)
		}
	}
}

// TestRateMomentumClipped: a 2×2 solution whose momentum is outside
// [0, maxMu] gets μ clipped to the bound and the α that minimizes the model
// at that μ, α = (∇ᵀU − μ a12)/a11, reported as clipped and not as a
// fallback; the decrease is M there, which is above the unclipped minimum
// and at the minimum along α (checked by the model at α ± 1 %).
func TestRateMomentumClipped(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		a11, a12, a22, gu, gp float64
		maxMu                 float64
		wantMu                float64
		rawMu                 float64 // the 2×2 solution's μ, worked by hand
	}{
		// [[2, 1], [1, 4]] (3, −1) / 7 = (5/7, −1/7).
		{"negative", 4, -1, 2, 3, 1, 0.95, 0, -1.0 / 7},
		// [[2, 1], [1, 4]] (3, 1) / 7 = (1, 1).
		{"above the bound", 4, -1, 2, 3, -1, 0.95, 0.95, 1},
		{"above a lower bound", 4, -1, 2, 3, -1, 0.5, 0.5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alpha, mu, dec, clipped, ok, reason := rateMomentum(tc.a11, tc.a12, tc.a22, tc.gu, tc.gp, true, tc.maxMu)
			if !ok || !clipped || reason != "" {
				t.Fatalf("ok %v clipped %v reason %q, want a clipped momentum without fallback", ok, clipped, reason)
			}
			wantA := (tc.gu - tc.wantMu*tc.a12) / tc.a11
			if mu != tc.wantMu || !scalar.EqualWithinRel(alpha, wantA, 1e-15) {
				t.Errorf("α, μ = %g, %g, want %g, %g", alpha, mu, wantA, tc.wantMu)
			}
			m := quadModel(tc.a11, tc.a12, tc.a22, tc.gu, tc.gp, alpha, mu)
			if !scalar.EqualWithinRel(dec, m, 1e-14) {
				t.Errorf("decrease %g, want M(α, μ) − M(0) = %g", dec, m)
			}
			for _, f := range []float64{0.99, 1.01} {
				if quadModel(tc.a11, tc.a12, tc.a22, tc.gu, tc.gp, f*alpha, mu) < m {
					t.Errorf("M at %g α is below M at α: α does not minimize the model at μ = %g", f, mu)
				}
			}
			// The unclipped solution, the model's minimum, has the μ worked by
			// hand and a lower M.
			_, raw, rawDec, rawClipped, _, _ := rateMomentum(tc.a11, tc.a12, tc.a22, tc.gu, tc.gp, true, math.MaxFloat64)
			if rawClipped && tc.rawMu >= 0 || !scalar.EqualWithinAbsOrRel(raw, tc.rawMu, 1e-15, 1e-14) && tc.rawMu >= 0 {
				t.Errorf("unbounded μ %g (clipped %v), want %g", raw, rawClipped, tc.rawMu)
			}
			if tc.rawMu >= 0 && !(rawDec < dec) {
				t.Errorf("unclipped decrease %g not below the clipped %g", rawDec, dec)
			}
		})
	}
}

// TestRateMomentumFallbacks: the fallbacks of the 2×2 model, each to the
// best α = ∇ᵀU/a11 along U alone with μ = 0 and decrease −½(∇ᵀU)²/a11, with
// the reason named; and the failures (no positive finite α), which return
// ok false, α = μ = 0 and a NaN decrease.
func TestRateMomentumFallbacks(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		a11, a12, a22, gu, gp float64
		hasPrev               bool
		ok                    bool
		reason                string // substring; "" for none
	}{
		{"first update", 4, 0, 0, 3, 0, false, true, ""},
		{"first update ignores a12, a22", 4, 9, -9, 3, 7, false, true, ""},
		{"non-positive curvature along δ₀", 4, -1, 0, 3, 0.5, true, true, "non-positive curvature along the update"},
		{"negative curvature along δ₀", 4, -1, -2, 3, 0.5, true, true, "non-positive curvature along the update"},
		{"collinear", 4, -2, 1, 3, 0.5, true, true, "not positive definite"},
		// det = 4 − (2 − 1e-14)² ≈ 4e-14 > 0, below 1e-12·a11·a22: nearly
		// collinear directions, whose 2×2 solution would be meaningless.
		{"nearly collinear", 4, -(2 - 1e-14), 1, 3, 0.5, true, true, "not positive definite"},
		{"indefinite", 4, 3, 1, 3, 0.5, true, true, "not positive definite"},
		// det = 0.39; the 2×2 solution (α, μ) = (−46.2, 97.7) has μ
		// clipped to 0.95, for which α = (∇ᵀU − 0.95 a12)/a11 < 0 still.
		{"negative 2×2 rate", 4, 1.9, 1, 1, -10, true, true, "non-positive rate"},
		{"non-positive curvature along U", -1, 0, 2, 3, 0.5, true, false, "fixed Rate"},
		{"zero curvature along U", 0, 0, 0, 3, 0, false, false, "fixed Rate"},
		{"ascent direction", 4, 0, 0, -3, 0, false, false, "fixed Rate"},
		{"zero slope", 4, 0, 0, 0, 0, false, false, "fixed Rate"},
		{"infinite curvature", math.Inf(1), 0, 0, 3, 0, false, false, "fixed Rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alpha, mu, dec, clipped, ok, reason := rateMomentum(tc.a11, tc.a12, tc.a22, tc.gu, tc.gp, tc.hasPrev, DefaultMaxMomentum)
			if clipped {
				t.Errorf("clipped reported for a fallback")
			}
			if ok != tc.ok || (tc.reason == "") != (reason == "") || !strings.Contains(reason, tc.reason) {
				t.Fatalf("ok %v, reason %q, want ok %v, reason containing %q", ok, reason, tc.ok, tc.reason)
			}
			if !tc.ok {
				if alpha != 0 || mu != 0 || !math.IsNaN(dec) || !strings.HasPrefix(reason, "AutoRate: ") {
					t.Errorf("α, μ, decrease = %g, %g, %g, reason %q; want 0, 0, NaN", alpha, mu, dec, reason)
				}
				return
			}
			wantA := tc.gu / tc.a11
			if !scalar.EqualWithinRel(alpha, wantA, 1e-15) || mu != 0 || !scalar.EqualWithinRel(dec, -0.5*tc.gu*tc.gu/tc.a11, 1e-15) {
				t.Errorf("α, μ, decrease = %g, %g, %g, want %g, 0, %g", alpha, mu, dec, wantA, -0.5*tc.gu*tc.gu/tc.a11)
			}
			if m := quadModel(tc.a11, 0, 0, tc.gu, 0, alpha, 0); !scalar.EqualWithinRel(dec, m, 1e-15) {
				t.Errorf("decrease %g, want M(α, 0) − M(0) = %g", dec, m)
			}
		})
	}
}

// TestConstrainRate: η is lowered to sqrt(C/∇ᵀU) exactly when η²∇ᵀU > C, so
// that the lowered step has η²∇ᵀU = C; at the bound and below it is kept,
// and C = +Inf never binds.
func TestConstrainRate(t *testing.T) {
	for _, tc := range []struct {
		eta, c, gu float64
		want       float64
		lowered    bool
	}{
		{2, 1, 0.5, math.Sqrt2, true}, // 4·0.5 = 2 > 1
		{1, 1, 0.5, 1, false},         // 0.5 ≤ 1
		{2, 1, 0.25, 2, false},        // at the bound: 4·0.25 = 1
		{3, 0.01, 4, 0.05, true},      // sqrt(0.01/4)
		{1e3, math.Inf(1), 1e6, 1e3, false},
	} {
		got, lowered := constrainRate(tc.eta, tc.c, tc.gu)
		if !scalar.EqualWithinRel(got, tc.want, 1e-15) || lowered != tc.lowered {
			t.Errorf("constrainRate(%g, %g, %g) = %g, %v, want %g, %v", tc.eta, tc.c, tc.gu, got, lowered, tc.want, tc.lowered)
		}
		if lowered && !scalar.EqualWithinRel(got*got*tc.gu, tc.c, 1e-14) {
			t.Errorf("constrainRate(%g, %g, %g): η²∇ᵀU = %g, want C", tc.eta, tc.c, tc.gu, got*got*tc.gu)
		}
	}
}
