package optim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"
)

// acpDense solves the dense damped system of thesis §3.4.2,
//
//	(Ā ⊗ αI + λI) vec([ΔW Δb]) = vec([∇W ∇b]),
//
// with θ = [vec(W); b] column-major, the reference for ACP's closed form.
func acpDense(t *testing.T, abar mat.Symmetric, gw *mat.Dense, gb *mat.VecDense, alpha, lambda float64) (*mat.Dense, *mat.VecDense) {
	t.Helper()
	out, in := gw.Dims()
	var f mat.SymDense
	curvature.DenseACP(&f, abar, out, alpha, lambda)
	g := mat.NewVecDense(out*(in+1), nil)
	for c := 0; c <= in; c++ {
		for r := 0; r < out; r++ {
			v := gb.AtVec(r)
			if c < in {
				v = gw.At(r, c)
			}
			g.SetVec(c*out+r, v)
		}
	}
	var ch mat.Cholesky
	require.True(t, ch.Factorize(&f), "dense preconditioner not positive definite")
	var x mat.VecDense
	require.NoError(t, ch.SolveVecTo(&x, g))
	dw, db := mat.NewDense(out, in, nil), mat.NewVecDense(out, nil)
	for c := 0; c <= in; c++ {
		for r := 0; r < out; r++ {
			if c < in {
				dw.Set(r, c, x.AtVec(c*out+r))
			} else {
				db.SetVec(r, x.AtVec(c*out+r))
			}
		}
	}
	return dw, db
}

// acpObserve runs one step of opt (Momentum 0, Rate eta) on layers and
// returns the steps ΔW, Δb = (θ_before − θ_after)/η of layer k.
func acpObserve(t *testing.T, opt *ACP, eta float64, layers []*secondorder.Layer, k int) (*mat.Dense, *mat.VecDense) {
	t.Helper()
	w0, b0 := mat.DenseCopyOf(layers[k].W), mat.VecDenseCopyOf(layers[k].B)
	require.NoError(t, opt.Step(layers))
	w0.Sub(w0, layers[k].W)
	w0.Scale(1/eta, w0)
	b0.SubVec(b0, layers[k].B)
	b0.ScaleVec(1/eta, b0)
	return w0, b0
}

// assertClose checks ‖got − want‖_max ≤ tol · max(1, ‖want‖_max).
func assertStepClose(t *testing.T, want, got mat.Matrix, tol float64, msg string) {
	t.Helper()
	var d mat.Dense
	d.Sub(want, got)
	scale := max(1, mat.Norm(want, math.Inf(1)))
	if e := mat.Norm(&d, math.Inf(1)); !(e <= tol*scale) {
		t.Errorf("%s: max |difference| %.3g > %.1g × %.3g", msg, e, tol, scale)
	}
}

func acpAbar(h mat.Matrix) *mat.SymDense {
	var a mat.SymDense
	curvature.InputFactor(&a, h)
	return &a
}

// acpBlockOf returns the curvature block of layer k of opt, through which
// the α and the damping of the layer are visible: CurrentAlpha is the α of
// the last step, RefreshAlpha the α_r of the factorization held, and
// Damping/RefreshAlpha the damping λ/α_r on Ā of that factorization.
func acpBlockOf(t *testing.T, opt *ACP, k int) *curvature.ACPBlock {
	t.Helper()
	require.Greater(t, len(opt.e.layers), k, "no state for layer %d", k)
	b, ok := opt.e.layers[k].block.(*curvature.ACPBlock)
	require.True(t, ok, "layer %d: block %T, want *curvature.ACPBlock", k, opt.e.layers[k].block)
	return b
}

// acpDampingOnAbar returns the damping λ/α_r on Ā of the factorization held
// by layer k (zero before the first factorization).
func acpDampingOnAbar(t *testing.T, opt *ACP, k int) float64 {
	t.Helper()
	b := acpBlockOf(t, opt, k)
	if b.Damping() == 0 {
		return 0
	}
	return b.Damping() / b.RefreshAlpha()
}

// TestACPMatchesDenseSolve: the step of a refresh update equals the dense
// solve of (Ā ⊗ αI + λI) against vec([∇W ∇b]), for fixed and heuristic α,
// several λ and non-square layers, including n < n_in (singular C).
// Tolerance 1e-8 relative to the step's largest entry. (The comparison of
// the batch-side and gradient-side forms of the solve is in package
// curvature, acp_block_test.go.)
func TestACPMatchesDenseSolve(t *testing.T) {
	type shape struct{ n, in, out int }
	// The last two shapes have batches smaller than their layers, where the
	// block preconditions the inputs instead of the gradient.
	for _, sh := range []shape{{20, 5, 3}, {9, 2, 4}, {6, 3, 1}, {3, 5, 2}, {3, 6, 20}, {5, 8, 30}} {
		for _, lambda := range []float64{1e-3, 0.1, 2} {
			for _, fixed := range []float64{0, 0.7} {
				t.Run(fmt.Sprintf("%v-lambda%v-alpha%v", sh, lambda, fixed), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(31, uint64(sh.n)))
					l := randRecord(rng, sh.n, sh.in, sh.out)
					alpha := fixed
					if alpha == 0 {
						alpha = curvature.MaxSquaredGrad(l.Grad)
					}
					wantW, wantB := acpDense(t, acpAbar(l.Input), l.GradW, l.GradB, alpha, lambda)
					// No norm constraint: the step is compared with the
					// unconstrained solve (the records have no Risk).
					opt := &ACP{Rules: Rules{Rate: 0.5, Damping: lambda, NormConstraint: math.Inf(1)}, Alpha: fixed}
					dw, db := acpObserve(t, opt, 0.5, []*secondorder.Layer{l}, 0)
					assertStepClose(t, wantW, dw, 1e-8, "ΔW")
					assertStepClose(t, wantB, db, 1e-8, "Δb")
					assert.InDelta(t, alpha, acpBlockOf(t, opt, 0).CurrentAlpha(), 0)
					assert.InDelta(t, lambda/alpha, acpDampingOnAbar(t, opt, 0), 1e-15*lambda/alpha)
					r := opt.Report()
					assert.Equal(t, lambda, r.Damping, "λ is absolute and not adapted")
					assert.Zero(t, r.DampingRaised)
					assert.True(t, r.Stats && r.Refreshed, "report %+v: want statistics and a refresh at the first update", r)
				})
			}
		}
	}
}

// TestACPUndampedMatchesEq333: with λ = 0 the step is eq. 3.3.3 and the
// corrected eq. 3.3.4, computed here example by example with C⁻¹ from a
// dense inverse:
//
//	ΔW = (1/α)(1/n) Σ_j g_j (h_j − μ)ᵀ C⁻¹,   Δb = (1/α)(1/n) Σ_j g_j − ΔW μ.
//
// Tolerance 1e-9 relative.
func TestACPUndampedMatchesEq333(t *testing.T) {
	for _, fixed := range []float64{0, 2.5} {
		rng := rand.New(rand.NewPCG(33, 34))
		const n, in, out = 12, 4, 3
		l := randRecord(rng, n, in, out)
		alpha := fixed
		if alpha == 0 {
			alpha = curvature.MaxSquaredGrad(l.Grad)
		}
		mu, sum, gbar := centeredGrads(l) // μ, (1/n) Σ_j g_j (h_j − μ)ᵀ and (1/n) Σ_j g_j
		c := mat.NewSymDense(in, nil)
		for i := 0; i < n; i++ {
			for a := 0; a < in; a++ {
				for b := a; b < in; b++ {
					c.SetSym(a, b, c.At(a, b)+(l.Input.At(i, a)-mu[a])*(l.Input.At(i, b)-mu[b])/n)
				}
			}
		}
		var cinv mat.Dense
		require.NoError(t, cinv.Inverse(c))
		var wantW mat.Dense
		wantW.Mul(sum, &cinv)
		wantW.Scale(1/alpha, &wantW)
		var wmu mat.VecDense
		wmu.MulVec(&wantW, mat.NewVecDense(in, mu))
		wantB := mat.NewVecDense(out, nil)
		for o := 0; o < out; o++ {
			wantB.SetVec(o, gbar.AtVec(o)/alpha-wmu.AtVec(o))
		}
		opt := &ACP{Rules: Rules{Rate: 1, Undamped: true, NormConstraint: math.Inf(1)}, Alpha: fixed}
		dw, db := acpObserve(t, opt, 1, []*secondorder.Layer{l}, 0)
		assertStepClose(t, &wantW, dw, 1e-9, "ΔW (eq. 3.3.3)")
		assertStepClose(t, wantB, db, 1e-9, "Δb (eq. 3.3.4 corrected)")
		assert.Equal(t, 0.0, acpDampingOnAbar(t, opt, 0))
		assert.Zero(t, opt.Report().DampingRaised)
	}
}

// newBatch replaces l's Input and Grad by a fresh batch whose inputs have
// scale and offset given, and recomputes GradW and GradB.
func acpNewBatch(rng *rand.Rand, l *secondorder.Layer, n int, scale, offset float64) {
	out, in := l.Dims()
	x := mat.NewDense(n, in, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < in; j++ {
			x.Set(i, j, offset*float64(j+1)+scale*rng.NormFloat64())
		}
	}
	l.Input, l.Grad = x, randDense(rng, n, out)
	l.ComputeParamGrads()
}

// TestACPAmortization: with InversePeriod 3 and the heuristic α, updates 2
// and 3 reuse the statistics and the damping λ/α₁ of update 1 while 1/α
// follows the current minibatch, i.e. they solve Ā₁ ⊗ α_t I + λ(α_t/α₁) I;
// update 4 refreshes from its own minibatch. The minibatches differ in scale
// and mean, so using the current statistics would fail the test (checked).
// Tolerance 1e-8 relative.
func TestACPAmortization(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	const n, in, out, lambda = 15, 4, 3, 0.05
	l := &secondorder.Layer{W: randDense(rng, out, in), B: testutil.RandVec(rng, out)}
	layers := []*secondorder.Layer{l}
	opt := &ACP{Rules: Rules{Rate: 0.3, Damping: lambda, InversePeriod: 3, NormConstraint: math.Inf(1)}}

	acpNewBatch(rng, l, n, 1, 0.5)
	a1, alpha1 := acpAbar(l.Input), curvature.MaxSquaredGrad(l.Grad)
	dw, db := acpObserve(t, opt, 0.3, layers, 0)
	wantW, wantB := acpDense(t, a1, l.GradW, l.GradB, alpha1, lambda)
	assertStepClose(t, wantW, dw, 1e-8, "update 1 ΔW")
	assertStepClose(t, wantB, db, 1e-8, "update 1 Δb")
	assert.True(t, opt.Report().Stats && opt.Report().Refreshed, "update 1: report %+v", opt.Report())

	for u, sc := range []struct{ scale, offset float64 }{{3, -2}, {0.2, 4}} {
		acpNewBatch(rng, l, n+u, sc.scale, sc.offset)
		l.Grad.Scale(float64(u+2), l.Grad) // a different α
		l.ComputeParamGrads()
		alpha := curvature.MaxSquaredGrad(l.Grad)
		dw, db := acpObserve(t, opt, 0.3, layers, 0)
		wantW, wantB := acpDense(t, a1, l.GradW, l.GradB, alpha, lambda*alpha/alpha1)
		assertStepClose(t, wantW, dw, 1e-8, fmt.Sprintf("update %d ΔW", u+2))
		assertStepClose(t, wantB, db, 1e-8, fmt.Sprintf("update %d Δb", u+2))
		assert.InDelta(t, lambda/alpha1, acpDampingOnAbar(t, opt, 0), 1e-15)
		assert.Equal(t, alpha1, acpBlockOf(t, opt, 0).RefreshAlpha())
		assert.Equal(t, alpha, acpBlockOf(t, opt, 0).CurrentAlpha())
		assert.False(t, opt.Report().Stats || opt.Report().Refreshed, "update %d: report %+v", u+2, opt.Report())
		curW, _ := acpDense(t, acpAbar(l.Input), l.GradW, l.GradB, alpha, lambda)
		var d mat.Dense
		d.Sub(curW, dw)
		assert.Greater(t, mat.Norm(&d, math.Inf(1)), 1e-3*mat.Norm(curW, math.Inf(1)), "statistics of the current minibatch give the same step: the test cannot fail")
	}

	acpNewBatch(rng, l, n, 2, 1)
	a4, alpha4 := acpAbar(l.Input), curvature.MaxSquaredGrad(l.Grad)
	dw, db = acpObserve(t, opt, 0.3, layers, 0)
	wantW, wantB = acpDense(t, a4, l.GradW, l.GradB, alpha4, lambda)
	assertStepClose(t, wantW, dw, 1e-8, "update 4 (refresh) ΔW")
	assertStepClose(t, wantB, db, 1e-8, "update 4 (refresh) Δb")
	assert.InDelta(t, lambda/alpha4, acpDampingOnAbar(t, opt, 0), 1e-15)
	assert.True(t, opt.Report().Stats && opt.Report().Refreshed, "update 4: report %+v", opt.Report())
}

// TestACPMovingAverage: with Decay and InversePeriod 1 the statistics are
// the moving average Ā ← ε Ā + (1−ε) Ā_batch with ε_k = min(1 − 1/k, Decay)
// at the k-th refresh (ε₁ = 0). Fixed α; tolerance 1e-8 relative.
func TestACPMovingAverage(t *testing.T) {
	for _, decay := range []float64{0.3, 0.9} {
		rng := rand.New(rand.NewPCG(37, 38))
		const n, in, out, alpha, lambda = 10, 3, 2, 1.7, 0.02
		l := &secondorder.Layer{W: randDense(rng, out, in), B: testutil.RandVec(rng, out)}
		opt := &ACP{Rules: Rules{Rate: 0.5, Damping: lambda, InversePeriod: 1, NormConstraint: math.Inf(1)}, Alpha: alpha, Decay: decay}
		avg := mat.NewSymDense(in+1, nil)
		for k := 1; k <= 3; k++ {
			acpNewBatch(rng, l, n, float64(k), float64(2-k))
			eps := min(1-1/float64(k), decay)
			var a mat.SymDense
			a.ScaleSym(eps, avg)
			a.AddSym(&a, acpScaledSym(1-eps, acpAbar(l.Input)))
			avg = &a
			dw, db := acpObserve(t, opt, 0.5, []*secondorder.Layer{l}, 0)
			wantW, wantB := acpDense(t, avg, l.GradW, l.GradB, alpha, lambda)
			assertStepClose(t, wantW, dw, 1e-8, fmt.Sprintf("decay %v refresh %d ΔW", decay, k))
			assertStepClose(t, wantB, db, 1e-8, fmt.Sprintf("decay %v refresh %d Δb", decay, k))
		}
	}
}

func acpScaledSym(s float64, a *mat.SymDense) *mat.SymDense {
	var r mat.SymDense
	r.ScaleSym(s, a)
	return &r
}

// TestACPExactNewtonOnLinearModel: for a linear model with the quadratic
// loss the Gauss–Newton matrix is Ā ⊗ 2I exactly, so ACP with α = 2, λ = 0
// and rate 1 reaches the least-squares solution in one step (without the
// norm constraint, which would shorten it). Tolerance 1e-9 on the risk.
func TestACPExactNewtonOnLinearModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(39, 40))
	p := newHandLinear(rng, 40, 4, 3)
	// Least squares with an intercept column.
	n, in := p.x.Dims()
	xa := mat.NewDense(n, in+1, nil)
	xa.Copy(p.x)
	for i := 0; i < n; i++ {
		xa.Set(i, in, 1)
	}
	var theta mat.Dense
	require.NoError(t, theta.Solve(xa, p.y))
	var res mat.Dense
	res.Mul(xa, &theta)
	res.Sub(&res, p.y)
	best := mat.Norm(&res, 2)
	best = best * best / float64(n)

	p.fill()
	require.NoError(t, (&ACP{Rules: Rules{Rate: 1, Undamped: true, NormConstraint: math.Inf(1)}, Alpha: 2}).Step(p.layers()))
	assert.InDelta(t, best, p.fill(), 1e-9*max(1, best))
}

// TestACPSingularCovarianceRaisesDamping: a constant input column makes C
// singular; without damping the factorization fails, the damping is raised
// from zero, reported to the hook (in the units of Damping, absolute for
// ACP), counted by Report and held by the layer's block, and the step is
// finite and equals the dense solve with that damping. The other layer is
// not affected. With λ > 0 nothing is raised.
func TestACPSingularCovarianceRaisesDamping(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	const n, alpha = 12, 1.5
	l0 := randRecord(rng, n, 4, 3)
	for i := 0; i < n; i++ {
		l0.Input.Set(i, 1, 0.5) // exactly representable mean: C has an exact zero row
	}
	l0.ComputeParamGrads()
	l1 := randRecord(rng, n, 3, 2)
	type call struct {
		layer int
		used  float64
	}
	var calls []call
	// No norm constraint: the step is compared with the unconstrained solve.
	opt := &ACP{Rules: Rules{Rate: 1, Undamped: true, NormConstraint: math.Inf(1), OnDampingRaised: func(k int, u float64) { calls = append(calls, call{k, u}) }}, Alpha: alpha}
	a0 := acpAbar(l0.Input)
	gw, gb := mat.DenseCopyOf(l0.GradW), mat.VecDenseCopyOf(l0.GradB)
	dw, db := acpObserve(t, opt, 1, []*secondorder.Layer{l0, l1}, 0)
	require.Len(t, calls, 1)
	assert.Equal(t, 0, calls[0].layer)
	assert.Equal(t, 0.0, opt.Report().Damping, "the requested damping")
	assert.Greater(t, calls[0].used, 0.0)
	assert.Equal(t, 1, opt.Report().DampingRaised)
	assert.Equal(t, calls[0].used, acpBlockOf(t, opt, 0).Damping())
	assert.Equal(t, calls[0].used/alpha, acpDampingOnAbar(t, opt, 0))
	assert.Equal(t, 0.0, acpDampingOnAbar(t, opt, 1))
	for _, v := range append(append([]float64{}, dw.RawMatrix().Data...), db.RawVector().Data...) {
		require.False(t, math.IsNaN(v) || math.IsInf(v, 0), "non-finite step")
	}
	wantW, wantB := acpDense(t, a0, gw, gb, alpha, calls[0].used)
	assertStepClose(t, wantW, dw, 1e-6, "ΔW with the raised damping")
	assertStepClose(t, wantB, db, 1e-6, "Δb with the raised damping")

	calls = nil
	setQuadraticRisk(l0, l1) // the default norm constraint reads it
	opt = &ACP{Rules: Rules{Damping: 1e-4, OnDampingRaised: func(k int, u float64) { calls = append(calls, call{k, u}) }}, Alpha: alpha}
	require.NoError(t, opt.Step([]*secondorder.Layer{l0, l1}))
	assert.Empty(t, calls)
	assert.Zero(t, opt.Report().DampingRaised)
	assert.InDelta(t, 1e-4/alpha, acpDampingOnAbar(t, opt, 0), 1e-18)
}

// TestACPNonFiniteReturnsError: NaN or Inf in Input, Grad, GradW or an Extra
// gradient makes Step return an error and leaves every parameter of every
// layer unchanged; the next clean step works.
func TestACPNonFiniteReturnsError(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    ACP
		warm   bool // one clean step first, so that the bad one is between refreshes
		poison func(l *secondorder.Layer)
	}{
		{"NaN Input at refresh", ACP{}, false, func(l *secondorder.Layer) { l.Input.Set(2, 1, math.NaN()) }},
		{"Inf Input at refresh, fixed alpha", ACP{Alpha: 1}, false, func(l *secondorder.Layer) { l.Input.Set(0, 0, math.Inf(1)) }},
		{"Inf Grad, heuristic alpha", ACP{}, true, func(l *secondorder.Layer) { l.Grad.Set(0, 0, math.Inf(-1)); l.ComputeParamGrads() }},
		{"NaN Grad, fixed alpha, between refreshes", ACP{Alpha: 1}, true, func(l *secondorder.Layer) { l.Grad.Set(1, 1, math.NaN()); l.ComputeParamGrads() }},
		{"NaN Input between refreshes", ACP{Alpha: 1}, true, func(l *secondorder.Layer) { l.Input.Set(3, 2, math.NaN()); l.ComputeParamGrads() }},
		{"NaN Extra gradient", ACP{}, true, func(l *secondorder.Layer) { l.Extra[0].Grad.SetVec(0, math.NaN()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(43, 44))
			good, bad := randRecord(rng, 8, 3, 2), randRecord(rng, 8, 4, 3)
			setQuadraticRisk(good, bad) // the default norm constraint reads it
			layers := []*secondorder.Layer{good, bad}
			opt := tc.opt
			opt.Momentum = 0.5
			if tc.warm {
				require.NoError(t, opt.Step(layers))
			}
			clean := *bad
			clean.Input, clean.Grad = mat.DenseCopyOf(bad.Input), mat.DenseCopyOf(bad.Grad)
			clean.GradW, clean.GradB = mat.DenseCopyOf(bad.GradW), mat.VecDenseCopyOf(bad.GradB)
			clean.Extra = []secondorder.ExtraParam{{Name: "beta", Value: bad.Extra[0].Value, Grad: mat.VecDenseCopyOf(bad.Extra[0].Grad)}}
			tc.poison(bad)
			p0, p1 := flatParams(good), flatParams(bad)
			updates := opt.Report().Updates
			err := opt.Step(layers)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "optim: ACP: layer 1")
			assert.Equal(t, p0, flatParams(good), "layer 0 changed")
			assert.Equal(t, p1, flatParams(bad), "layer 1 changed")
			assert.Equal(t, updates, opt.Report().Updates, "refused update counted")
			layers[1] = &clean
			require.NoError(t, opt.Step(layers))
			for _, v := range append(flatParams(good), flatParams(&clean)...) {
				require.False(t, math.IsNaN(v) || math.IsInf(v, 0))
			}
		})
	}
}

// TestACPZeroGradient: with the heuristic α an all-zero Grad gives α = 0: no
// step and no factorization; the statistics due at that update (its Input)
// stay pending and are factorized at the next update with α > 0, with that
// update's α. The two minibatches' inputs differ, so that using the
// statistics of the second would fail the test (checked).
func TestACPZeroGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	l := randRecord(rng, 10, 3, 2)
	l.Grad.Zero()
	l.ComputeParamGrads()
	a1 := acpAbar(l.Input) // the statistics of update 1
	// No norm constraint: the step is compared with the unconstrained solve.
	opt := &ACP{Rules: Rules{Rate: 0.5, InversePeriod: 5, NormConstraint: math.Inf(1)}}
	p := flatParams(l)
	require.NoError(t, opt.Step([]*secondorder.Layer{l}))
	assert.Equal(t, p[:8], flatParams(l)[:8], "W or b moved with a zero gradient")
	b := acpBlockOf(t, opt, 0)
	assert.Equal(t, 0.0, b.CurrentAlpha())
	assert.False(t, b.Ready(), "factorized at α = 0")
	assert.True(t, b.Pending(), "statistics of update 1 not pending")
	acpNewBatch(rng, l, 10, 1, 1)
	alpha := curvature.MaxSquaredGrad(l.Grad)
	wantW, wantB := acpDense(t, a1, l.GradW, l.GradB, alpha, 0.01)
	dw, db := acpObserve(t, opt, 0.5, []*secondorder.Layer{l}, 0)
	assertStepClose(t, wantW, dw, 1e-8, "ΔW")
	assertStepClose(t, wantB, db, 1e-8, "Δb")
	assert.True(t, b.Ready() && !b.Pending())
	assert.Equal(t, alpha, b.RefreshAlpha())
	r := opt.Report()
	assert.True(t, r.Refreshed && !r.Stats, "update 2: report %+v, want a refresh without statistics", r)
	curW, _ := acpDense(t, acpAbar(l.Input), l.GradW, l.GradB, alpha, 0.01)
	var d mat.Dense
	d.Sub(curW, dw)
	assert.Greater(t, mat.Norm(&d, math.Inf(1)), 1e-3*mat.Norm(curW, math.Inf(1)), "statistics of the current minibatch give the same step: the test cannot fail")
}

// TestACPExtraPlainSteps: Extra parameters get gradient steps of rate
// ExtraRate (zero: Rate, whose default is DefaultACPRate) with the momentum
// rule of the curvature step (v ← μv − ηg, θ ← θ + v; Nesterov θ ← θ + μv − ηg),
// over two steps with fresh gradients.
func TestACPExtraPlainSteps(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  ACP
		rate float64
	}{
		{"default", ACP{}, DefaultACPRate},
		{"rate", ACP{Rules: Rules{Rate: 0.2}}, 0.2},
		{"extra-rate", ACP{Rules: Rules{Rate: 0.2, ExtraRate: 0.3}}, 0.3},
		{"momentum", ACP{Rules: Rules{ExtraRate: 0.3, Momentum: 0.5}}, 0.3},
		{"nesterov", ACP{Rules: Rules{Rate: 0.2, Momentum: 0.5, Nesterov: true}}, 0.2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(47, 48))
			l := randRecord(rng, 6, 3, 2)
			setQuadraticRisk(l) // the default norm constraint reads it
			want := mat.VecDenseCopyOf(l.Extra[0].Value)
			v := mat.NewVecDense(want.Len(), nil)
			opt := tc.opt
			for step := 0; step < 2; step++ {
				g := testutil.RandVec(rng, want.Len())
				l.Extra[0].Grad = g
				require.NoError(t, opt.Step([]*secondorder.Layer{l}))
				mu := opt.Momentum
				for i := 0; i < want.Len(); i++ {
					v.SetVec(i, mu*v.AtVec(i)-tc.rate*g.AtVec(i))
					d := v.AtVec(i)
					if opt.Nesterov {
						d = mu*v.AtVec(i) - tc.rate*g.AtVec(i)
					}
					want.SetVec(i, want.AtVec(i)+d)
				}
			}
			assert.True(t, mat.EqualApprox(want, l.Extra[0].Value, 1e-15), "Extra\n%v\nwant\n%v", mat.Formatted(l.Extra[0].Value.T()), mat.Formatted(want.T()))
		})
	}
}

// TestACPRefusesBadSettings: an invalid setting makes Step return the error
// of Validate, naming the setting, with every parameter unchanged; a record
// without the Grad that the heuristic α needs is a programmer error and
// panics.
func TestACPRefusesBadSettings(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	checkRefusals(t, "ACP", func() *secondorder.Layer { return randRecord(rng, 5, 3, 2) }, []refusal[ACP]{
		{ACP{Rules: Rules{Rate: -1}}, "Rate=-1"},
		{ACP{Rules: Rules{Rate: math.NaN()}}, "Rate=NaN"},
		{ACP{Rules: Rules{Momentum: 1}}, "Momentum=1"},
		{ACP{Alpha: -2}, "Alpha=-2"},
		{ACP{Alpha: math.Inf(1)}, "Alpha=+Inf"},
		{ACP{Rules: Rules{Damping: -0.1}}, "Damping=-0.1"},
		{ACP{Rules: Rules{Damping: 0.1, Undamped: true}}, "Undamped with Damping=0.1"},
		{ACP{Rules: Rules{InversePeriod: -1}}, "InversePeriod=-1"},
		{ACP{Decay: 1}, "Decay=1"},
		{ACP{Rules: Rules{ExtraRate: -1}}, "ExtraRate=-1"},
	})
	l := randRecord(rng, 5, 3, 2)
	l.Grad = nil
	checkOptimPanics(t, "optim: ACP: ", "Grad", func() { (&ACP{}).Step([]*secondorder.Layer{l}) })
}

// TestACPDecreasesLoss: full-batch training of the hand-made models. The
// heuristic α = max (∇_a l)² is meant for bounded outputs (the residuals of
// the linear model here are large, where it takes tiny steps), so the linear
// model uses a fixed α (its exact output curvature is 2). The default norm
// constraint, relative to the risk, holds each step's predicted decrease to
// a few percent of the risk, hence the 150 steps of the first case.
func TestACPDecreasesLoss(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   *ACP
		steps int
		frac  float64
	}{
		{"fixed-alpha", &ACP{Rules: Rules{Rate: 0.5}, Alpha: 2}, 150, 0.01},
		{"fixed-alpha-momentum", &ACP{Rules: Rules{Rate: 0.1, Momentum: 0.5, InversePeriod: 5}, Alpha: 2}, 150, 0.01},
	} {
		t.Run("linear-"+tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(51, 52))
			checkDecreases(t, newHandLinear(rng, 64, 5, 2), tc.opt, tc.steps, tc.frac)
		})
	}
	for _, tc := range []struct {
		name string
		opt  *ACP
		frac float64
	}{
		{"defaults", &ACP{}, 0.05},
		{"heuristic-momentum-decay", &ACP{Rules: Rules{Rate: 0.01, Momentum: 0.9}, Decay: 0.9}, 0.05},
		{"fixed-alpha-momentum-decay", &ACP{Rules: Rules{Rate: 0.05, Momentum: 0.9}, Alpha: 0.5, Decay: 0.9}, 0.01},
	} {
		t.Run("two-layer-"+tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(53, 54))
			checkDecreases(t, newHandTwoLayer(rng, 50, 4, 8, 3), tc.opt, 200, tc.frac)
		})
	}
}

func TestACPNoAllocs(t *testing.T) {
	rng := rand.New(rand.NewPCG(55, 56))
	layers := []*secondorder.Layer{randRecord(rng, 8, 5, 3), randRecord(rng, 8, 3, 2)}
	setQuadraticRisk(layers...) // the default norm constraint reads it
	// InversePeriod 2: the measured steps include refreshes.
	checkNoAllocs(t, layers, &ACP{Rules: Rules{InversePeriod: 2}, Decay: 0.9}, 3)
	checkNoAllocs(t, layers, &ACP{Rules: Rules{InversePeriod: 2, Momentum: 0.9}}, 3)
}
