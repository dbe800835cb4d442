package optim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// Hand-made test problems whose records are filled without package nn.

// handProblem is a model whose records fill refills for the current
// parameters, returning the risk (1/n) Σ_i ‖f(x_i) − y_i‖².
type handProblem interface {
	layers() []*secondorder.Layer
	fill() float64
}

// handLinear is the linear model f = W x + b with the quadratic loss
// ‖f − y‖², so ∇_a l = 2(f − y). The inputs have column means far from zero
// and unequal scales, so that centering and preconditioning matter.
type handLinear struct {
	x, y, a *mat.Dense
	l       *secondorder.Layer
}

func newHandLinear(rng *rand.Rand, n, in, out int) *handLinear {
	x := mat.NewDense(n, in, nil)
	for j := 0; j < in; j++ {
		off, scale := 2*rng.NormFloat64(), 0.5+rng.Float64()*2
		for i := 0; i < n; i++ {
			x.Set(i, j, off+scale*rng.NormFloat64())
		}
	}
	wTrue, bTrue := randDense(rng, out, in), randVec(rng, out)
	y := mat.NewDense(n, out, nil)
	y.Mul(x, wTrue.T())
	for i := 0; i < n; i++ {
		for j := 0; j < out; j++ {
			y.Set(i, j, y.At(i, j)+bTrue.AtVec(j)+0.1*rng.NormFloat64())
		}
	}
	return &handLinear{
		x: x, y: y, a: mat.NewDense(n, out, nil),
		l: &secondorder.Layer{W: mat.NewDense(out, in, nil), B: mat.NewVecDense(out, nil), Input: x, Grad: mat.NewDense(n, out, nil)},
	}
}

func (p *handLinear) layers() []*secondorder.Layer { return []*secondorder.Layer{p.l} }

func (p *handLinear) fill() float64 {
	return affineQuadratic(p.a, p.l, p.y)
}

// affineQuadratic computes a = Input Wᵀ + 1bᵀ, the gradient 2(a − y) of the
// quadratic loss into l.Grad, the parameter gradients, and returns the risk.
func affineQuadratic(a *mat.Dense, l *secondorder.Layer, y *mat.Dense) float64 {
	handAffine(a, l)
	n, out := a.Dims()
	risk := 0.0
	for i := 0; i < n; i++ {
		for j := 0; j < out; j++ {
			r := a.At(i, j) - y.At(i, j)
			risk += r * r
			l.Grad.Set(i, j, 2*r)
		}
	}
	l.ComputeParamGrads()
	return risk / float64(n)
}

// affine sets a = Input Wᵀ + 1bᵀ.
func handAffine(a *mat.Dense, l *secondorder.Layer) {
	a.Mul(l.Input, l.W.T())
	n, out := a.Dims()
	for i := 0; i < n; i++ {
		for j := 0; j < out; j++ {
			a.Set(i, j, a.At(i, j)+l.B.AtVec(j))
		}
	}
}

// handTwoLayer is f = W₂ σ(W₁ x + b₁) + b₂ with the logistic sigmoid σ and
// the quadratic loss, fitted to a teacher of the same shape.
type handTwoLayer struct {
	y, a1, h, a2 *mat.Dense
	l1, l2       *secondorder.Layer
}

func newHandTwoLayer(rng *rand.Rand, n, in, hidden, out int) *handTwoLayer {
	x := randDense(rng, n, in)
	p := &handTwoLayer{
		a1: mat.NewDense(n, hidden, nil), h: mat.NewDense(n, hidden, nil), a2: mat.NewDense(n, out, nil),
		l1: &secondorder.Layer{W: randDense(rng, hidden, in), B: mat.NewVecDense(hidden, nil), Input: x, Grad: mat.NewDense(n, hidden, nil)},
	}
	p.l1.W.Scale(0.3, p.l1.W)
	p.l2 = &secondorder.Layer{W: randDense(rng, out, hidden), B: mat.NewVecDense(out, nil), Input: p.h, Grad: mat.NewDense(n, out, nil)}
	p.l2.W.Scale(0.3, p.l2.W)
	// Teacher outputs.
	t1, t2 := randDense(rng, hidden, in), randDense(rng, out, hidden)
	th := mat.NewDense(n, hidden, nil)
	th.Mul(x, t1.T())
	th.Apply(func(_, _ int, v float64) float64 { return 1 / (1 + math.Exp(-v)) }, th)
	p.y = mat.NewDense(n, out, nil)
	p.y.Mul(th, t2.T())
	return p
}

func (p *handTwoLayer) layers() []*secondorder.Layer { return []*secondorder.Layer{p.l1, p.l2} }

func (p *handTwoLayer) fill() float64 {
	handAffine(p.a1, p.l1)
	p.h.Apply(func(_, _ int, v float64) float64 { return 1 / (1 + math.Exp(-v)) }, p.a1)
	risk := affineQuadratic(p.a2, p.l2, p.y)
	// ∇_{a1} l = (∇_{a2} l W₂) ⊙ σ'(a1), σ' = h(1 − h).
	p.l1.Grad.Mul(p.l2.Grad, p.l2.W)
	p.l1.Grad.Apply(func(i, j int, v float64) float64 {
		h := p.h.At(i, j)
		return v * h * (1 - h)
	}, p.l1.Grad)
	p.l1.ComputeParamGrads()
	return risk
}

// checkDecreases runs steps full-batch steps of opt on p and requires the
// risk to fall below frac times its initial value.
func checkDecreases(t *testing.T, p handProblem, opt Optimizer, steps int, frac float64) {
	t.Helper()
	r0 := p.fill()
	for s := 0; s < steps; s++ {
		require.NoError(t, opt.Step(p.layers()))
		r := p.fill()
		require.False(t, math.IsNaN(r) || math.IsInf(r, 0), "risk %v at step %d", r, s)
	}
	r := p.fill()
	if r > frac*r0 {
		t.Errorf("risk %.4g after %d steps, want < %.3g × initial %.4g", r, steps, frac, r0)
	}
}

// checkNoAllocs requires Step to allocate nothing in steady state, after
// warm steps.
func checkNoAllocs(t *testing.T, layers []*secondorder.Layer, opt Optimizer, warm int) {
	t.Helper()
	for s := 0; s < warm; s++ {
		require.NoError(t, opt.Step(layers))
	}
	if n := testing.AllocsPerRun(4, func() { _ = opt.Step(layers) }); n != 0 {
		t.Errorf("Step allocates %v times per call in steady state, want 0", n)
	}
}

// checkPanics requires f to panic with a string starting with prefix and
// containing want.
func checkOptimPanics(t *testing.T, prefix, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		msg, _ := r.(string)
		if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, want) {
			t.Errorf("panic %v, want %q... %q", r, prefix, want)
		}
	}()
	f()
}

// settingsChecker is an optimizer whose settings Validate checks.
type settingsChecker interface {
	Optimizer
	Reporter
	Validate() error
}

// checkRefused requires Step to refuse opt's settings: an error starting
// with prefix and containing want, the same error as Validate's, every
// parameter of every layer (Extra included) unchanged and no update counted.
func checkRefused(t *testing.T, opt settingsChecker, layers []*secondorder.Layer, prefix, want string) {
	t.Helper()
	var before [][]float64
	for _, l := range layers {
		before = append(before, flatParams(l))
	}
	err := opt.Step(layers)
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), want) {
		t.Errorf("Step: error %v, want %q... %q", err, prefix, want)
	}
	if verr := opt.Validate(); verr == nil || err == nil || verr.Error() != err.Error() {
		t.Errorf("Validate: %v, want the error of Step, %v", verr, err)
	}
	for k, l := range layers {
		if !assert.Equal(t, before[k], flatParams(l)) {
			t.Errorf("layer %d: parameters changed by a refused step", k)
		}
	}
	if n := opt.Report().Updates; n != 0 {
		t.Errorf("refused step counted: Updates = %d", n)
	}
}

// flatParams returns W (row by row), B and each Extra value of l in one
// slice, read through At so that any storage layout works.
func flatParams(l *secondorder.Layer) []float64 {
	var s []float64
	r, c := l.W.Dims()
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			s = append(s, l.W.At(i, j))
		}
	}
	for i := 0; i < l.B.Len(); i++ {
		s = append(s, l.B.AtVec(i))
	}
	for _, p := range l.Extra {
		for i := 0; i < p.Value.Len(); i++ {
			s = append(s, p.Value.AtVec(i))
		}
	}
	return s
}

// flatGrads is flatParams for GradW, GradB and the Extra gradients.
func flatGrads(l *secondorder.Layer) []float64 {
	m := &secondorder.Layer{W: l.GradW, B: l.GradB}
	for _, p := range l.Extra {
		m.Extra = append(m.Extra, secondorder.Param{Value: p.Grad})
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
		return randVec(rng, n)
	}
	return &secondorder.Layer{
		W: mat3x4(), B: vec(3), GradW: mat3x4(), GradB: vec(3),
		Extra: []secondorder.Param{{Name: "gamma", Value: vec(2), Grad: vec(2)}},
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
