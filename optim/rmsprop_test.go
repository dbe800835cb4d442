package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRMSPropMatchesFormula runs three steps with fresh random gradients and
// compares every parameter (W, B and an Extra parameter) with
// r ← ρr + (1−ρ)g², θ ← θ − ηg/(√r+ε) (or its momentum form) written out
// per scalar. Tolerance 1e-13 absolute (parameters are O(1)).
func TestRMSPropMatchesFormula(t *testing.T) {
	for _, tc := range []struct {
		name              string
		opt               RMSProp
		eta, rho, eps, mu float64
		strided           bool
	}{
		{"defaults", RMSProp{}, 0.001, 0.9, 1e-8, 0, false},
		{"custom", RMSProp{Rate: 0.05, Rho: 0.5, Epsilon: 0.1}, 0.05, 0.5, 0.1, 0, false},
		{"momentum", RMSProp{Rate: 0.02, Momentum: 0.7}, 0.02, 0.9, 1e-8, 0.7, false},
		{"strided", RMSProp{Rate: 0.05, Rho: 0.8, Momentum: 0.5}, 0.05, 0.8, 1e-8, 0.5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 6))
			l := elemLayer(rng, tc.strided)
			p := flatParams(l)
			r := make([]float64, len(p))
			v := make([]float64, len(p))
			opt := tc.opt
			for step := 0; step < 3; step++ {
				refillGrads(rng, l)
				g := flatGrads(l)
				require.NoError(t, opt.Step([]*secondorder.Layer{l}))
				for i := range p {
					r[i] = tc.rho*r[i] + (1-tc.rho)*g[i]*g[i]
					d := tc.eta * g[i] / (math.Sqrt(r[i]) + tc.eps)
					if tc.mu == 0 {
						p[i] -= d
					} else {
						v[i] = tc.mu*v[i] + d
						p[i] -= v[i]
					}
				}
			}
			assert.InDeltaSlice(t, p, flatParams(l), 1e-13)
		})
	}
}

// TestRMSPropRefusesBadSettings: an invalid setting makes Step return the
// error of Validate, naming the setting, with every parameter unchanged.
func TestRMSPropRefusesBadSettings(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		opt  RMSProp
		want string
	}{
		{RMSProp{Rate: -1}, "Rate=-1"},
		{RMSProp{Rate: math.NaN()}, "Rate=NaN"},
		{RMSProp{Rho: 1}, "Rho=1"},
		{RMSProp{Rho: -0.1}, "Rho=-0.1"},
		{RMSProp{Epsilon: -1e-8}, "Epsilon=-1e-08"},
		{RMSProp{Momentum: 1}, "Momentum=1"},
	} {
		l := elemLayer(rng, false)
		opt := tc.opt
		checkRefused(t, &opt, []*secondorder.Layer{l}, "optim: RMSProp: ", tc.want)
	}
	var ok RMSProp
	assert.NoError(t, ok.Validate(), "zero value")
}

func TestRMSPropDecreasesLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	checkDecreases(t, newHandLinear(rng, 64, 5, 2), &RMSProp{Rate: 0.03}, 300, 0.01)
	checkDecreases(t, newHandTwoLayer(rng, 50, 4, 8, 3), &RMSProp{Rate: 0.01, Momentum: 0.5}, 200, 0.3)
}

func TestRMSPropNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, strided := range []bool{false, true} {
		checkNoAllocs(t, []*secondorder.Layer{elemLayer(rng, strided), elemLayer(rng, false)}, &RMSProp{Momentum: 0.9}, 2)
	}
}
