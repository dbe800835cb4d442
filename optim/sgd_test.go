package optim

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

func randDense(rng *rand.Rand, r, c int) *mat.Dense {
	d := make([]float64, r*c)
	for i := range d {
		d[i] = rng.NormFloat64()
	}
	return mat.NewDense(r, c, d)
}

func randVec(rng *rand.Rand, n int) *mat.VecDense {
	d := make([]float64, n)
	for i := range d {
		d[i] = rng.NormFloat64()
	}
	return mat.NewVecDense(n, d)
}

// TestSGDMatchesFormula runs three steps with fresh random gradients and
// compares every parameter with the update rules written out per scalar.
func TestSGDMatchesFormula(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      SGD
		eta, mu  float64
		nesterov bool
	}{
		{"plain-default-rate", SGD{}, 0.01, 0, false},
		{"plain", SGD{Rate: 0.3}, 0.3, 0, false},
		{"momentum", SGD{Rate: 0.1, Momentum: 0.9}, 0.1, 0.9, false},
		{"nesterov", SGD{Rate: 0.1, Momentum: 0.5, Nesterov: true}, 0.1, 0.5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			l := &secondorder.Layer{W: randDense(rng, 3, 4), B: randVec(rng, 3)}
			// Reference state, one scalar at a time.
			w := append([]float64(nil), l.W.RawMatrix().Data...)
			b := append([]float64(nil), l.B.RawVector().Data...)
			vw := make([]float64, len(w))
			vb := make([]float64, len(b))
			opt := tc.opt
			for step := 0; step < 3; step++ {
				l.GradW, l.GradB = randDense(rng, 3, 4), randVec(rng, 3)
				require.NoError(t, opt.Step([]*secondorder.Layer{l}))
				upd := func(p, v []float64, g []float64) {
					for i := range p {
						v[i] = tc.mu*v[i] - tc.eta*g[i]
						if tc.nesterov {
							p[i] += tc.mu*v[i] - tc.eta*g[i]
						} else {
							p[i] += v[i]
						}
					}
				}
				upd(w, vw, l.GradW.RawMatrix().Data)
				upd(b, vb, l.GradB.RawVector().Data)
			}
			assert.InDeltaSlice(t, w, l.W.RawMatrix().Data, 1e-14, "W differs from the formula")
			assert.InDeltaSlice(t, b, l.B.RawVector().Data, 1e-14, "B differs from the formula")
		})
	}
}

// TestSGDRefusesBadSettings: an invalid setting makes Step return the error
// of Validate, naming the setting, with every parameter unchanged.
func TestSGDRefusesBadSettings(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		opt  SGD
		want string
	}{
		{"negative rate", SGD{Rate: -1}, "Rate=-1"},
		{"momentum one", SGD{Momentum: 1}, "Momentum=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &secondorder.Layer{W: randDense(rng, 2, 2), B: randVec(rng, 2), GradW: randDense(rng, 2, 2), GradB: randVec(rng, 2)}
			opt := tc.opt
			checkRefused(t, &opt, []*secondorder.Layer{l}, "optim: SGD: ", tc.want)
		})
	}
	var ok SGD
	assert.NoError(t, ok.Validate(), "zero value")
}

func TestSGDMissingGradientsPanics(t *testing.T) {
	l := &secondorder.Layer{W: mat.NewDense(2, 2, nil), B: mat.NewVecDense(2, nil)}
	defer func() {
		if msg, _ := recover().(string); !strings.Contains(msg, "GradW") {
			t.Errorf("panic %q, want a message about GradW", msg)
		}
	}()
	(&SGD{}).Step([]*secondorder.Layer{l})
}
