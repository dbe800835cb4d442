package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// Tests of the element-wise methods SGD, Centered, RMSProp and Adam. Each is
// checked against its update written out for one scalar (momentumRule,
// rmspropRule, adamRule), by checkMatchesFormula on elemLayer records, and
// Centered against algorithm 2 example by example.

// scalarRule is an optimizer's update written out for one scalar: the new
// value of a parameter p with gradient g at step (1, 2, 3, …), updating the
// parameter's state (two slots, zero before the first step).
type scalarRule func(step int, p, g float64, state *[2]float64) float64

// momentumRule is the package's momentum rule for one scalar with velocity
// v = state[0]: v ← μ v − η d, then p + v (classical) or p + μ v − η d
// (Nesterov).
func momentumRule(eta, mu float64, nesterov bool) scalarRule {
	return func(_ int, p, d float64, state *[2]float64) float64 {
		state[0] = mu*state[0] - eta*d
		if nesterov {
			return p + (mu*state[0] - eta*d)
		}
		return p + state[0]
	}
}

// momentumCases are the settings on which SGD and Centered are checked
// against momentumRule: the default rate, plain steps, classical and
// Nesterov momentum, with the η and μ they mean.
var momentumCases = []struct {
	name          string
	rate, eta, mu float64
	nesterov      bool
}{
	{"default-rate", 0, 0.01, 0, false},
	{"plain", 0.3, 0.3, 0, false},
	{"momentum", 0.1, 0.1, 0.9, false},
	{"nesterov", 0.1, 0.1, 0.5, true},
}

// applyRule updates every parameter of p by rule at step, with the
// gradients g and the parameters' states.
func applyRule(rule scalarRule, step int, p, g []float64, state [][2]float64) {
	for i := range p {
		p[i] = rule(step, p[i], g[i], &state[i])
	}
}

// checkMatchesFormula runs three steps of opt, with fresh random gradients,
// on an elemLayer (strided or not) drawn from rng, and requires every
// parameter (W, B and the Extra parameter) to equal, within tol absolute,
// the parameters updated by rule one scalar at a time.
func checkMatchesFormula(t *testing.T, rng *rand.Rand, opt Optimizer, strided bool, tol float64, rule scalarRule) {
	t.Helper()
	l := elemLayer(rng, strided)
	p := flatParams(l)
	state := make([][2]float64, len(p))
	for step := 1; step <= 3; step++ {
		refillGrads(rng, l)
		g := flatGrads(l)
		require.NoError(t, opt.Step([]*secondorder.Layer{l}))
		applyRule(rule, step, p, g, state)
	}
	assert.InDeltaSlice(t, p, flatParams(l), tol)
}

// flatGrads is flatParams for GradW, GradB and the Extra gradients.
func flatGrads(l *secondorder.Layer) []float64 {
	m := &secondorder.Layer{W: l.GradW, B: l.GradB}
	for _, p := range l.Extra {
		m.Extra = append(m.Extra, secondorder.ExtraParam{Value: p.Grad})
	}
	return flatParams(m)
}

// elemLayer returns a 3×4 layer with one Extra parameter of length 2 and
// random values. With strided, W and GradW are views with stride ≠ 4 and B,
// GradB and the Extra vectors are columns of matrices (Inc ≠ 1).
func elemLayer(rng *rand.Rand, strided bool) *secondorder.Layer {
	mat3x4 := func() *mat.Dense {
		if strided {
			return randDense(rng, 3, 7).Slice(0, 3, 2, 6).(*mat.Dense)
		}
		return randDense(rng, 3, 4)
	}
	vec := func(n int) *mat.VecDense {
		if strided {
			return randDense(rng, n, 3).ColView(1).(*mat.VecDense)
		}
		return testutil.RandVec(rng, n)
	}
	return &secondorder.Layer{
		W: mat3x4(), B: vec(3), GradW: mat3x4(), GradB: vec(3),
		Extra: []secondorder.ExtraParam{{Name: "gamma", Value: vec(2), Grad: vec(2)}},
	}
}

// refillGrads puts fresh random values into every gradient of l, in place.
func refillGrads(rng *rand.Rand, l *secondorder.Layer) {
	r, c := l.GradW.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			l.GradW.Set(i, j, rng.NormFloat64())
		}
	}
	vecs := []*mat.VecDense{l.GradB}
	for _, p := range l.Extra {
		vecs = append(vecs, p.Grad)
	}
	for _, v := range vecs {
		for i := 0; i < v.Len(); i++ {
			v.SetVec(i, rng.NormFloat64())
		}
	}
}

// checkElemNoAllocs is checkNoAllocs for an elementwise optimizer on two
// elemLayers, the first strided or not.
func checkElemNoAllocs(t *testing.T, rng *rand.Rand, opt Optimizer) {
	t.Helper()
	for _, strided := range []bool{false, true} {
		checkNoAllocs(t, []*secondorder.Layer{elemLayer(rng, strided), elemLayer(rng, false)}, opt, 2)
	}
}

// rmspropRule is RMSProp for one scalar with running mean square
// r = state[0] and velocity v = state[1]: r ← ρ r + (1 − ρ) g²,
// d = η g/(√r + ε), then p − d without momentum, or v ← μ v + d and p − v.
func rmspropRule(eta, rho, eps, mu float64) scalarRule {
	return func(_ int, p, g float64, state *[2]float64) float64 {
		r, v := &state[0], &state[1]
		*r = rho*(*r) + (1-rho)*g*g
		d := eta * g / (math.Sqrt(*r) + eps)
		if mu == 0 {
			return p - d
		}
		*v = mu*(*v) + d
		return p - *v
	}
}

// adamRule is algorithm 1 of Kingma & Ba (2015) for one scalar with moments
// m = state[0] and v = state[1], bias correction included: m ← β₁ m +
// (1 − β₁) g, v ← β₂ v + (1 − β₂) g², p − η m̂/(√v̂ + ε) with
// m̂ = m/(1 − β₁ᵗ) and v̂ = v/(1 − β₂ᵗ) at step t.
func adamRule(eta, b1, b2, eps float64) scalarRule {
	return func(step int, p, g float64, state *[2]float64) float64 {
		m, v := &state[0], &state[1]
		*m = b1*(*m) + (1-b1)*g
		*v = b2*(*v) + (1-b2)*g*g
		mh := *m / (1 - math.Pow(b1, float64(step)))
		vh := *v / (1 - math.Pow(b2, float64(step)))
		return p - eta*mh/(math.Sqrt(vh)+eps)
	}
}

// TestSGDMatchesFormula runs three steps with fresh random gradients and
// compares every parameter (W, B and an Extra parameter) with the momentum
// rule written out per scalar. Tolerance 1e-14 absolute.
func TestSGDMatchesFormula(t *testing.T) {
	for _, tc := range momentumCases {
		t.Run(tc.name, func(t *testing.T) {
			opt := &SGD{Rate: tc.rate, Momentum: tc.mu, Nesterov: tc.nesterov}
			checkMatchesFormula(t, rand.New(rand.NewPCG(1, 2)), opt, false, 1e-14, momentumRule(tc.eta, tc.mu, tc.nesterov))
		})
	}
}

// TestAdaptiveMatchesFormula runs three steps of RMSProp and Adam with
// fresh random gradients and compares every parameter (W, B and an Extra
// parameter) with rmspropRule and adamRule. Tolerance 1e-13 absolute
// (parameters are O(1)).
func TestAdaptiveMatchesFormula(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     Optimizer
		rule    scalarRule
		strided bool
	}{
		{"RMSProp/defaults", &RMSProp{}, rmspropRule(0.001, 0.9, 1e-8, 0), false},
		{"RMSProp/custom", &RMSProp{Rate: 0.05, Rho: 0.5, Epsilon: 0.1}, rmspropRule(0.05, 0.5, 0.1, 0), false},
		{"RMSProp/momentum", &RMSProp{Rate: 0.02, Momentum: 0.7}, rmspropRule(0.02, 0.9, 1e-8, 0.7), false},
		{"RMSProp/strided", &RMSProp{Rate: 0.05, Rho: 0.8, Momentum: 0.5}, rmspropRule(0.05, 0.8, 1e-8, 0.5), true},
		{"Adam/defaults", &Adam{}, adamRule(0.001, 0.9, 0.999, 1e-8), false},
		{"Adam/custom", &Adam{Rate: 0.05, Beta1: 0.5, Beta2: 0.7, Epsilon: 0.1}, adamRule(0.05, 0.5, 0.7, 0.1), false},
		{"Adam/strided", &Adam{Rate: 0.01, Beta2: 0.9}, adamRule(0.01, 0.9, 0.9, 1e-8), true},
		{"Adam/no-momentum", &Adam{Rate: 0.02, NoMomentum: true}, adamRule(0.02, 0, 0.999, 1e-8), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkMatchesFormula(t, rand.New(rand.NewPCG(11, 12)), tc.opt, tc.strided, 1e-13, tc.rule)
		})
	}
}

// TestSGDRefusesBadSettings: an invalid setting makes Step return the error
// of Validate, naming the setting, with every parameter unchanged.
func TestSGDRefusesBadSettings(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	checkRefusals(t, "SGD", func() *secondorder.Layer {
		return &secondorder.Layer{W: randDense(rng, 2, 2), B: testutil.RandVec(rng, 2), GradW: randDense(rng, 2, 2), GradB: testutil.RandVec(rng, 2)}
	}, []refusal[SGD]{
		{SGD{Rate: -1}, "Rate=-1"},
		{SGD{Momentum: 1}, "Momentum=1"},
	})
}

// TestRMSPropRefusesBadSettings: an invalid setting makes Step return the
// error of Validate, naming the setting, with every parameter unchanged.
func TestRMSPropRefusesBadSettings(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	checkRefusals(t, "RMSProp", func() *secondorder.Layer { return elemLayer(rng, false) }, []refusal[RMSProp]{
		{RMSProp{Rate: -1}, "Rate=-1"},
		{RMSProp{Rate: math.NaN()}, "Rate=NaN"},
		{RMSProp{Rho: 1}, "Rho=1"},
		{RMSProp{Rho: -0.1}, "Rho=-0.1"},
		{RMSProp{Epsilon: -1e-8}, "Epsilon=-1e-08"},
		{RMSProp{Momentum: 1}, "Momentum=1"},
	})
}

// TestAdamRefusesBadSettings: an invalid setting makes Step return the error
// of Validate, naming the setting, with every parameter unchanged.
func TestAdamRefusesBadSettings(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	checkRefusals(t, "Adam", func() *secondorder.Layer { return elemLayer(rng, false) }, []refusal[Adam]{
		{Adam{Rate: -1}, "Rate=-1"},
		{Adam{Rate: math.Inf(1)}, "Rate=+Inf"},
		{Adam{Beta1: 1}, "Beta1=1"},
		{Adam{Beta2: -0.5}, "Beta2=-0.5"},
		{Adam{Beta2: 1}, "Beta2=1"},
		{Adam{Epsilon: -1}, "Epsilon=-1"},
		{Adam{NoMomentum: true, Beta1: 0.5}, "NoMomentum with Beta1=0.5"},
	})
}

func TestSGDMissingGradientsPanics(t *testing.T) {
	l := &secondorder.Layer{W: mat.NewDense(2, 2, nil), B: mat.NewVecDense(2, nil)}
	checkOptimPanics(t, "optim: SGD: ", "GradW", func() { (&SGD{}).Step([]*secondorder.Layer{l}) })
}

func TestRMSPropDecreasesLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	checkTrainsHandModels(t, rng, &RMSProp{Rate: 0.03}, &RMSProp{Rate: 0.01, Momentum: 0.5})
}

func TestAdamDecreasesLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	checkTrainsHandModels(t, rng, &Adam{Rate: 0.05}, &Adam{Rate: 0.01})
}

func TestRMSPropNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	checkElemNoAllocs(t, rng, &RMSProp{Momentum: 0.9})
}

func TestAdamNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	checkElemNoAllocs(t, rng, &Adam{})
}

// TestCenteredMatchesAlgorithm2 runs three steps on fresh random batches and
// compares W, b and an Extra parameter with algorithm 2 (descending) computed
// with a per-example loop, ΔW = (1/n) Σ_i g_i (h_i − h̄)ᵀ, Δb = (1/n) Σ_i g_i,
// with the same momentum as SGD. Tolerance 1e-12 absolute (O(1) values).
func TestCenteredMatchesAlgorithm2(t *testing.T) {
	for _, tc := range momentumCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 22))
			const n, in, out = 7, 4, 3
			l := randRecord(rng, n, in, out)
			w, b := mat.DenseCopyOf(l.W), mat.VecDenseCopyOf(l.B)
			e := mat.VecDenseCopyOf(l.Extra[0].Value)
			sw, sb, se := make([][2]float64, out*in), make([][2]float64, out), make([][2]float64, 2)
			rule := momentumRule(tc.eta, tc.mu, tc.nesterov)
			opt := Centered{Rate: tc.rate, Momentum: tc.mu, Nesterov: tc.nesterov}
			for step := 1; step <= 3; step++ {
				fresh := randRecord(rng, n, in, out)
				l.Input, l.Grad, l.GradW, l.GradB, l.Extra[0].Grad = fresh.Input, fresh.Grad, fresh.GradW, fresh.GradB, fresh.Extra[0].Grad
				// Algorithm 2, example by example.
				_, dw, db := centeredGrads(l)
				applyRule(rule, step, w.RawMatrix().Data, dw.RawMatrix().Data, sw)
				applyRule(rule, step, b.RawVector().Data, db.RawVector().Data, sb)
				applyRule(rule, step, e.RawVector().Data, mat.VecDenseCopyOf(l.Extra[0].Grad).RawVector().Data, se)
				require.NoError(t, opt.Step([]*secondorder.Layer{l}))
			}
			assert.True(t, mat.EqualApprox(w, l.W, 1e-12), "W differs from algorithm 2")
			assert.True(t, mat.EqualApprox(b, l.B, 1e-12), "b differs from algorithm 2")
			assert.True(t, mat.EqualApprox(e, l.Extra[0].Value, 1e-12), "Extra differs from algorithm 2")
		})
	}
}

// TestCenteredEqualsSGDOnCenteredInputs: when every column of Input has mean
// zero, centered gradient descent is SGD (same settings), to 1e-13.
func TestCenteredEqualsSGDOnCenteredInputs(t *testing.T) {
	for _, mu := range []float64{0, 0.9} {
		rng := rand.New(rand.NewPCG(23, 24))
		l1 := randRecord(rng, 9, 5, 3)
		var m mat.VecDense
		m.MulVec(l1.Input.T(), mat.NewVecDense(9, onesFloats(9)))
		for i := 0; i < 9; i++ {
			for j := 0; j < 5; j++ {
				l1.Input.Set(i, j, l1.Input.At(i, j)-m.AtVec(j)/9)
			}
		}
		l1.ComputeParamGrads()
		l2 := &secondorder.Layer{W: mat.DenseCopyOf(l1.W), B: mat.VecDenseCopyOf(l1.B), GradW: l1.GradW, GradB: l1.GradB, Extra: []secondorder.ExtraParam{{Value: mat.VecDenseCopyOf(l1.Extra[0].Value), Grad: l1.Extra[0].Grad}}}
		c, s := &Centered{Rate: 0.3, Momentum: mu}, &SGD{Rate: 0.3, Momentum: mu}
		for step := 0; step < 3; step++ {
			require.NoError(t, c.Step([]*secondorder.Layer{l1}))
			require.NoError(t, s.Step([]*secondorder.Layer{l2}))
		}
		assert.InDeltaSlice(t, flatParams(l2), flatParams(l1), 1e-13, "momentum %v", mu)
	}
}

// TestCenteredDiffersFromSGD guards the test above: with uncentered inputs
// the two differ.
func TestCenteredDiffersFromSGD(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	l1 := randRecord(rng, 9, 5, 3)
	l2 := &secondorder.Layer{W: mat.DenseCopyOf(l1.W), B: mat.VecDenseCopyOf(l1.B), GradW: l1.GradW, GradB: l1.GradB}
	require.NoError(t, (&Centered{Rate: 0.3}).Step([]*secondorder.Layer{l1}))
	require.NoError(t, (&SGD{Rate: 0.3}).Step([]*secondorder.Layer{l2}))
	assert.False(t, mat.EqualApprox(l1.W, l2.W, 1e-3))
}

func onesFloats(n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// TestCenteredRefusesBadSettings: an invalid setting makes Step return the
// error of Validate, naming the setting, with every parameter unchanged; a
// record without Input is a programmer error and panics.
func TestCenteredRefusesBadSettings(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	checkRefusals(t, "Centered", func() *secondorder.Layer { return randRecord(rng, 4, 3, 2) }, []refusal[Centered]{
		{Centered{Rate: -0.1}, "Rate=-0.1"},
		{Centered{Momentum: 1}, "Momentum=1"},
		{Centered{Momentum: -0.1}, "Momentum=-0.1"},
	})
	l := randRecord(rng, 4, 3, 2)
	l.Input = nil
	checkOptimPanics(t, "optim: Centered: ", "Input", func() { (&Centered{}).Step([]*secondorder.Layer{l}) })
}

func TestCenteredDecreasesLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	checkTrainsHandModels(t, rng, &Centered{Rate: 0.02, Momentum: 0.9}, &Centered{Rate: 0.05, Momentum: 0.9})
}

func TestCenteredNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	layers := []*secondorder.Layer{randRecord(rng, 8, 5, 3), randRecord(rng, 8, 3, 2)}
	checkNoAllocs(t, layers, &Centered{}, 2)
	checkNoAllocs(t, layers, &Centered{Momentum: 0.9, Nesterov: true}, 2)
}
