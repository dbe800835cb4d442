package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// randDense returns an r×c matrix of values drawn from N(0, 1).
func randDense(rng *rand.Rand, r, c int) *mat.Dense { return testutil.RandDense(rng, r, c, 1) }

// Hand-made test problems whose records are filled without package nn.

// handProblem is a model whose records fill refills for the current
// parameters, returning the risk (1/n) Σ_i ‖f(x_i) − y_i‖², which it also
// sets as every record's Risk (read by the norm constraint).
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
	wTrue, bTrue := randDense(rng, out, in), testutil.RandVec(rng, out)
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
	p.l.Risk = affineQuadratic(p.a, p.l, p.y)
	return p.l.Risk
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
	p.l1.Risk, p.l2.Risk = risk, risk
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

// checkTrainsHandModels requires full-batch steps to bring the risk of a
// newHandLinear problem below 1% of its initial value in 300 steps of
// linear, and that of a newHandTwoLayer problem below 30% in 200 steps of
// twoLayer (checkDecreases), both problems drawn from rng.
func checkTrainsHandModels(t *testing.T, rng *rand.Rand, linear, twoLayer Optimizer) {
	t.Helper()
	checkDecreases(t, newHandLinear(rng, 64, 5, 2), linear, 300, 0.01)
	checkDecreases(t, newHandTwoLayer(rng, 50, 4, 8, 3), twoLayer, 200, 0.3)
}

// checkNoAllocs requires Step to allocate nothing in steady state, after
// warm steps.
func checkNoAllocs(t *testing.T, layers []*secondorder.Layer, opt Optimizer, warm int) {
	t.Helper()
	testutil.SkipAllocsUnderRace(t)
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

// stepReporter is an optimizer that reports its updates.
type stepReporter interface {
	Optimizer
	Reporter
}

// checkFailedStep requires opt.Step(layers) to fail: an error starting with
// prefix and containing want, wrapping ErrMissingCapability exactly when
// missing, with every parameter of every layer (Extra included) unchanged
// and no update counted. It returns the error.
func checkFailedStep(t *testing.T, opt stepReporter, layers []*secondorder.Layer, prefix, want string, missing bool) error {
	t.Helper()
	var before [][]float64
	for _, l := range layers {
		before = append(before, flatParams(l))
	}
	err := opt.Step(layers)
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), want) {
		t.Errorf("Step: error %v, want %q... %q", err, prefix, want)
	}
	if errors.Is(err, ErrMissingCapability) != missing {
		t.Errorf("Step: error %v wraps ErrMissingCapability: %v, want %v", err, !missing, missing)
	}
	for k, l := range layers {
		if !assert.Equal(t, before[k], flatParams(l)) {
			t.Errorf("layer %d: parameters changed by a failed step", k)
		}
	}
	if n := opt.Report().Updates; n != 0 {
		t.Errorf("failed step counted: Updates = %d", n)
	}
	return err
}

// checkRefused requires Step to refuse opt's settings (checkFailedStep)
// with the same error as Validate's.
func checkRefused(t *testing.T, opt settingsChecker, layers []*secondorder.Layer, prefix, want string) {
	t.Helper()
	err := checkFailedStep(t, opt, layers, prefix, want, false)
	if verr := opt.Validate(); verr == nil || err == nil || verr.Error() != err.Error() {
		t.Errorf("Validate: %v, want the error of Step, %v", verr, err)
	}
}

// refusal is a setting that Validate and Step must refuse, with a fragment
// of the error naming it.
type refusal[T any] struct {
	opt  T
	want string
}

// checkRefusals requires Step to refuse every setting of cases
// (checkRefused, each on a fresh record from layer, errors prefixed
// "optim: name: "), and the zero value of the optimizer to be valid.
func checkRefusals[T any, P interface {
	*T
	settingsChecker
}](t *testing.T, name string, layer func() *secondorder.Layer, cases []refusal[T]) {
	t.Helper()
	for _, tc := range cases {
		opt := tc.opt
		checkRefused(t, P(&opt), []*secondorder.Layer{layer()}, "optim: "+name+": ", tc.want)
	}
	var ok T
	assert.NoError(t, P(&ok).Validate(), "zero value")
}

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
		W: randDense(rng, out, in), B: testutil.RandVec(rng, out), Input: x, Grad: randDense(rng, n, out),
		Extra: []secondorder.ExtraParam{{Name: "beta", Value: testutil.RandVec(rng, 2), Grad: testutil.RandVec(rng, 2)}},
	}
	l.ComputeParamGrads()
	return l
}

// setQuadraticRisk sets the Risk of every layer to (1/n) Σ_i ‖g_i/2‖² with
// g_i the rows of the last layer's Grad: the risk of the unhalved quadratic
// loss ‖f − y‖² whose output gradients 2(f − y) those rows would be. It is a
// plausible risk for records drawn at random (randRecord, kfRandomLayer),
// of the scale of their gradients, for tests whose optimizers read Risk
// (the norm constraint relative to the risk, on by default).
func setQuadraticRisk(layers ...*secondorder.Layer) {
	g := layers[len(layers)-1].Grad
	n, _ := g.Dims()
	r := mat.Norm(g, 2)
	for _, l := range layers {
		l.Risk = r * r / (4 * float64(n))
	}
}

// centeredGrads returns, computed example by example from the record's
// Input and Grad (n rows), the input mean h̄ = (1/n) Σ_i h_i and the
// centered gradients ΔW = (1/n) Σ_i g_i (h_i − h̄)ᵀ and Δb = (1/n) Σ_i g_i.
func centeredGrads(l *secondorder.Layer) (hbar []float64, dw *mat.Dense, db *mat.VecDense) {
	n, in := l.Input.Dims()
	_, out := l.Grad.Dims()
	hbar = make([]float64, in)
	for i := 0; i < n; i++ {
		for j := 0; j < in; j++ {
			hbar[j] += l.Input.At(i, j) / float64(n)
		}
	}
	dw, db = mat.NewDense(out, in, nil), mat.NewVecDense(out, nil)
	for i := 0; i < n; i++ {
		for o := 0; o < out; o++ {
			g := l.Grad.At(i, o)
			db.SetVec(o, db.AtVec(o)+g/float64(n))
			for j := 0; j < in; j++ {
				dw.Set(o, j, dw.At(o, j)+g*(l.Input.At(i, j)-hbar[j])/float64(n))
			}
		}
	}
	return hbar, dw, db
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
