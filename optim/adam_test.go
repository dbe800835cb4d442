package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAdamMatchesFormula runs three steps with fresh random gradients and
// compares every parameter (W, B and an Extra parameter) with algorithm 1 of
// Kingma & Ba (2015) written out per scalar, bias correction included.
// Tolerance 1e-13 absolute (parameters are O(1)).
func TestAdamMatchesFormula(t *testing.T) {
	for _, tc := range []struct {
		name            string
		opt             Adam
		eta, b1, b2, ep float64
		strided         bool
	}{
		{"defaults", Adam{}, 0.001, 0.9, 0.999, 1e-8, false},
		{"custom", Adam{Rate: 0.05, Beta1: 0.5, Beta2: 0.7, Epsilon: 0.1}, 0.05, 0.5, 0.7, 0.1, false},
		{"strided", Adam{Rate: 0.01, Beta2: 0.9}, 0.01, 0.9, 0.9, 1e-8, true},
		{"no-momentum", Adam{Rate: 0.02, NoMomentum: true}, 0.02, 0, 0.999, 1e-8, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(11, 12))
			l := elemLayer(rng, tc.strided)
			p := flatParams(l)
			m := make([]float64, len(p))
			v := make([]float64, len(p))
			opt := tc.opt
			for step := 1; step <= 3; step++ {
				refillGrads(rng, l)
				g := flatGrads(l)
				require.NoError(t, opt.Step([]*secondorder.Layer{l}))
				for i := range p {
					m[i] = tc.b1*m[i] + (1-tc.b1)*g[i]
					v[i] = tc.b2*v[i] + (1-tc.b2)*g[i]*g[i]
					mh := m[i] / (1 - math.Pow(tc.b1, float64(step)))
					vh := v[i] / (1 - math.Pow(tc.b2, float64(step)))
					p[i] -= tc.eta * mh / (math.Sqrt(vh) + tc.ep)
				}
			}
			assert.InDeltaSlice(t, p, flatParams(l), 1e-13)
		})
	}
}

// TestAdamRefusesBadSettings: an invalid setting makes Step return the error
// of Validate, naming the setting, with every parameter unchanged.
func TestAdamRefusesBadSettings(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		opt  Adam
		want string
	}{
		{Adam{Rate: -1}, "Rate=-1"},
		{Adam{Rate: math.Inf(1)}, "Rate=+Inf"},
		{Adam{Beta1: 1}, "Beta1=1"},
		{Adam{Beta2: -0.5}, "Beta2=-0.5"},
		{Adam{Beta2: 1}, "Beta2=1"},
		{Adam{Epsilon: -1}, "Epsilon=-1"},
		{Adam{NoMomentum: true, Beta1: 0.5}, "NoMomentum with Beta1=0.5"},
	} {
		l := elemLayer(rng, false)
		opt := tc.opt
		checkRefused(t, &opt, []*secondorder.Layer{l}, "optim: Adam: ", tc.want)
	}
	var ok Adam
	assert.NoError(t, ok.Validate(), "zero value")
}

func TestAdamDecreasesLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	checkDecreases(t, newHandLinear(rng, 64, 5, 2), &Adam{Rate: 0.05}, 300, 0.01)
	checkDecreases(t, newHandTwoLayer(rng, 50, 4, 8, 3), &Adam{Rate: 0.01}, 200, 0.3)
}

func TestAdamNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, strided := range []bool{false, true} {
		checkNoAllocs(t, []*secondorder.Layer{elemLayer(rng, strided), elemLayer(rng, false)}, &Adam{}, 2)
	}
}
