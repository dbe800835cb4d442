package optim

import (
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// randRecord returns a layer out×in with a batch of n random inputs (column
// means far from zero) and gradients, GradW and GradB filled from them, and
// one Extra parameter.
func randRecord(rng *rand.Rand, n, in, out int) *secondorder.Layer {
	x := randDense(rng, n, in)
	for j := 0; j < in; j++ {
		off := 3 * rng.NormFloat64()
		for i := 0; i < n; i++ {
			x.Set(i, j, x.At(i, j)+off)
		}
	}
	l := &secondorder.Layer{
		W: randDense(rng, out, in), B: randVec(rng, out), Input: x, Grad: randDense(rng, n, out),
		Extra: []secondorder.Param{{Name: "beta", Value: randVec(rng, 2), Grad: randVec(rng, 2)}},
	}
	l.ComputeParamGrads()
	return l
}

// TestCenteredMatchesAlgorithm2 runs three steps on fresh random batches and
// compares W, b and an Extra parameter with algorithm 2 (descending) computed
// with a per-example loop, ΔW = (1/n) Σ_i g_i (h_i − h̄)ᵀ, Δb = (1/n) Σ_i g_i,
// with the same momentum as SGD. Tolerance 1e-12 absolute (O(1) values).
func TestCenteredMatchesAlgorithm2(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opt      Centered
		eta, mu  float64
		nesterov bool
	}{
		{"default-rate", Centered{}, 0.01, 0, false},
		{"plain", Centered{Rate: 0.2}, 0.2, 0, false},
		{"momentum", Centered{Rate: 0.1, Momentum: 0.9}, 0.1, 0.9, false},
		{"nesterov", Centered{Rate: 0.1, Momentum: 0.5, Nesterov: true}, 0.1, 0.5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 22))
			const n, in, out = 7, 4, 3
			l := randRecord(rng, n, in, out)
			w, b := mat.DenseCopyOf(l.W), mat.VecDenseCopyOf(l.B)
			e := mat.VecDenseCopyOf(l.Extra[0].Value)
			vw, vb, ve := mat.NewDense(out, in, nil), mat.NewVecDense(out, nil), mat.NewVecDense(2, nil)
			upd := func(p, v, d []float64) {
				for i := range p {
					v[i] = tc.mu*v[i] - tc.eta*d[i]
					if tc.nesterov {
						p[i] += tc.mu*v[i] - tc.eta*d[i]
					} else {
						p[i] += v[i]
					}
				}
			}
			opt := tc.opt
			for step := 0; step < 3; step++ {
				fresh := randRecord(rng, n, in, out)
				l.Input, l.Grad, l.GradW, l.GradB, l.Extra[0].Grad = fresh.Input, fresh.Grad, fresh.GradW, fresh.GradB, fresh.Extra[0].Grad
				// Algorithm 2, example by example.
				hbar := make([]float64, in)
				for i := 0; i < n; i++ {
					for j := 0; j < in; j++ {
						hbar[j] += l.Input.At(i, j) / n
					}
				}
				dw := mat.NewDense(out, in, nil)
				db := mat.NewVecDense(out, nil)
				for i := 0; i < n; i++ {
					for o := 0; o < out; o++ {
						g := l.Grad.At(i, o)
						db.SetVec(o, db.AtVec(o)+g/n)
						for j := 0; j < in; j++ {
							dw.Set(o, j, dw.At(o, j)+g*(l.Input.At(i, j)-hbar[j])/n)
						}
					}
				}
				upd(w.RawMatrix().Data, vw.RawMatrix().Data, dw.RawMatrix().Data)
				upd(b.RawVector().Data, vb.RawVector().Data, db.RawVector().Data)
				upd(e.RawVector().Data, ve.RawVector().Data, mat.VecDenseCopyOf(l.Extra[0].Grad).RawVector().Data)
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
		l2 := &secondorder.Layer{W: mat.DenseCopyOf(l1.W), B: mat.VecDenseCopyOf(l1.B), GradW: l1.GradW, GradB: l1.GradB, Extra: []secondorder.Param{{Value: mat.VecDenseCopyOf(l1.Extra[0].Value), Grad: l1.Extra[0].Grad}}}
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
	for _, tc := range []struct {
		opt  Centered
		want string
	}{
		{Centered{Rate: -0.1}, "Rate=-0.1"},
		{Centered{Momentum: 1}, "Momentum=1"},
		{Centered{Momentum: -0.1}, "Momentum=-0.1"},
	} {
		l := randRecord(rng, 4, 3, 2)
		opt := tc.opt
		checkRefused(t, &opt, []*secondorder.Layer{l}, "optim: Centered: ", tc.want)
	}
	var ok Centered
	assert.NoError(t, ok.Validate(), "zero value")
	l := randRecord(rng, 4, 3, 2)
	l.Input = nil
	checkOptimPanics(t, "optim: Centered: ", "Input", func() { (&Centered{}).Step([]*secondorder.Layer{l}) })
}

func TestCenteredDecreasesLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	checkDecreases(t, newHandLinear(rng, 64, 5, 2), &Centered{Rate: 0.02, Momentum: 0.9}, 300, 0.01)
	checkDecreases(t, newHandTwoLayer(rng, 50, 4, 8, 3), &Centered{Rate: 0.05, Momentum: 0.9}, 200, 0.3)
}

func TestCenteredNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	layers := []*secondorder.Layer{randRecord(rng, 8, 5, 3), randRecord(rng, 8, 3, 2)}
	checkNoAllocs(t, layers, &Centered{}, 2)
	checkNoAllocs(t, layers, &Centered{Momentum: 0.9, Nesterov: true}, 2)
}
