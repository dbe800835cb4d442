package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// kfDenseStep is the reference K-FAC update of one layer, formed densely:
//
//	vec(ΔΘ) = −η [(Ā + π√λ I)⁻¹ ⊗ (G + (√λ/π) I)⁻¹] vec([∇W ∇b]),
//	π = sqrt((tr Ā/n_A)/(tr G/n_G)),
//
// with λ the absolute damping, returned as the n_out × (n_in+1) matrix ΔΘ.
func kfDenseStep(t *testing.T, a, g *mat.SymDense, lambda, eta float64, grad *mat.Dense) *mat.Dense {
	t.Helper()
	na, ng := a.SymmetricDim(), g.SymmetricDim()
	pi := math.Sqrt((mat.Trace(a) / float64(na)) / (mat.Trace(g) / float64(ng)))
	ad := mat.NewDense(na, na, nil)
	ad.Copy(a)
	gd := mat.NewDense(ng, ng, nil)
	gd.Copy(g)
	for i := 0; i < na; i++ {
		ad.Set(i, i, ad.At(i, i)+pi*math.Sqrt(lambda))
	}
	for i := 0; i < ng; i++ {
		gd.Set(i, i, gd.At(i, i)+math.Sqrt(lambda)/pi)
	}
	var ai, gi, m mat.Dense
	if err := ai.Inverse(ad); err != nil {
		t.Fatal(err)
	}
	if err := gi.Inverse(gd); err != nil {
		t.Fatal(err)
	}
	kron.Product(&m, &ai, &gi)
	var v, d mat.VecDense
	kron.Vec(&v, grad)
	d.MulVec(&m, &v)
	d.ScaleVec(-eta, &d)
	var out mat.Dense
	kron.Unvec(&out, &d, ng, na)
	return &out
}

// kfMeanEig is the scale s_l of relative damping, (tr Ā/n_A)(tr G/n_G).
func kfMeanEig(a, g *mat.SymDense) float64 {
	return mat.Trace(a) / float64(a.SymmetricDim()) * mat.Trace(g) / float64(g.SymmetricDim())
}

func kfDiff(after, before *mat.Dense) *mat.Dense {
	var d mat.Dense
	d.Sub(after, before)
	return &d
}

// TestKFACStepMatchesDenseKron checks one K-FAC update from a fresh
// optimizer (so the averages are the batch estimates) against the dense
// damped Kronecker solve, with the factors built independently with plain
// products, for every layer; with the norm constraint the rate is
// min(η, sqrt(C/∇ᵀU)) over all layers. Tolerance: 1e-9 absolute or
// relative per entry.
func TestKFACStepMatchesDenseKron(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name     string
		sizes    []int
		tanh     []bool
		back     string // "gn", "mc", "sub" (MC on the first 5 examples)
		opt      KFAC
		lambdaAb float64 // absolute damping, or 0 for relative
		bound    bool    // the norm constraint must bind
	}{
		{name: "linear/gn/relative", sizes: []int{3, 2}, tanh: []bool{false}, back: "gn", opt: KFAC{Rules: Rules{NormConstraint: inf}}},
		{name: "linear/mc/absolute", sizes: []int{4, 3}, tanh: []bool{false}, back: "mc",
			opt: KFAC{Rules: Rules{Damping: 0.1, AbsoluteDamping: true, Rate: 0.5, NormConstraint: inf}}, lambdaAb: 0.1},
		{name: "tanh2/gn/absolute", sizes: []int{4, 5, 2}, tanh: []bool{true, false}, back: "gn",
			opt: KFAC{Rules: Rules{Damping: 0.03, AbsoluteDamping: true, NormConstraint: inf}}, lambdaAb: 0.03},
		{name: "tanh2/mc/relative", sizes: []int{4, 5, 2}, tanh: []bool{true, false}, back: "mc",
			opt: KFAC{Rules: Rules{Damping: 0.01, Rate: 0.3, NormConstraint: inf}}},
		{name: "tanh2/subbatch/relative", sizes: []int{4, 5, 2}, tanh: []bool{true, false}, back: "sub",
			opt: KFAC{Rules: Rules{Damping: 0.02, NormConstraint: inf}}},
		{name: "tanh2/mc/constrained", sizes: []int{4, 5, 2}, tanh: []bool{true, false}, back: "mc",
			opt: KFAC{Rules: Rules{Damping: 0.01, NormConstraint: 0.05}}, bound: true},
		{name: "tanh2/gn/defaults", sizes: []int{4, 5, 2}, tanh: []bool{true, false}, back: "gn", opt: KFAC{}, bound: true},
	}
	const n = 12
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 7))
			net := newKFNet(rng, tc.sizes, tc.tanh, n)
			_, rows := net.fillRecords(rng, tc.back, 5)
			risk := net.layers[0].Risk // the norm constraint is relative to it
			var us, before []*mat.Dense
			gu := 0.0
			for _, l := range net.layers {
				a := kfInputFactor(l.Input, rows)
				g := kfOutputFactor(l)
				lam := tc.lambdaAb
				if lam == 0 {
					d := tc.opt.Damping
					if d == 0 {
						d = DefaultKFACDamping
					}
					lam = d * kfMeanEig(a, g)
				}
				u := kfDenseStep(t, a, g, lam, -1, kfGradThetaOf(l)) // U = F̃⁻¹∇
				us = append(us, u)
				gu += mat.Sum(kfMulElem(u, kfGradThetaOf(l)))
				before = append(before, kfThetaOf(l))
			}
			eta := tc.opt.Rate
			if eta == 0 {
				eta = 1
			}
			c := tc.opt.NormConstraint
			if c == 0 {
				c = DefaultNormConstraint
			}
			c *= risk
			bound := eta*eta*gu > c
			if bound {
				eta = math.Sqrt(c / gu)
			}
			if bound != tc.bound {
				t.Fatalf("norm constraint binds: %v, want %v", bound, tc.bound)
			}
			opt := tc.opt
			if err := opt.Step(net.layers); err != nil {
				t.Fatal(err)
			}
			for j, l := range net.layers {
				got := kfDiff(kfThetaOf(l), before[j])
				want := kfScaled(-eta, us[j])
				if !mat.EqualApprox(got, want, 1e-9) {
					t.Errorf("layer %d: step\n%v\nwant\n%v", j, mat.Formatted(got), mat.Formatted(want))
				}
			}
			r := opt.Report()
			if !r.Refreshed || !r.Stats || r.Updates != 1 || r.Constrained != bound || !scalar.EqualWithinRel(r.Rate, eta, 1e-12) {
				t.Errorf("report %+v, want a refresh and statistics at update 1, rate %g, constrained %v", r, eta, bound)
			}
		})
	}
}

func kfMulElem(a, b *mat.Dense) *mat.Dense {
	var e mat.Dense
	e.MulElem(a, b)
	return &e
}

// TestKFACExactOnLinearModel checks the case where K-FAC must be exact: a
// linear model with the quadratic loss and exact GN vectors, whose GN block
// is (2/n) X̃ᵀX̃ ⊗ I = Ā ⊗ G. One undamped-in-effect step (absolute
// λ = 1e-20, no norm constraint, η = 1) lands on the least-squares
// solution, to 1e-8.
func TestKFACExactOnLinearModel(t *testing.T) {
	checkLeastSquaresStep(t, &KFAC{Rules: Rules{Damping: 1e-20, AbsoluteDamping: true, NormConstraint: math.Inf(1)}}, 1e-8)
}

// kfEMA folds estimates with ε_k = min(1 − 1/k, ε).
type kfEMA struct {
	eps float64
	k   int
	m   *mat.SymDense
}

func (e *kfEMA) add(x *mat.SymDense) {
	e.k++
	w := math.Min(1-1/float64(e.k), e.eps)
	if e.m == nil {
		e.m = mat.NewSymDense(x.SymmetricDim(), nil)
	}
	var s mat.SymDense
	s.ScaleSym(w, e.m)
	var y mat.SymDense
	y.ScaleSym(1-w, x)
	e.m.AddSym(&s, &y)
}

func (e *kfEMA) copy() *mat.SymDense {
	return mat.NewSymDense(e.m.SymmetricDim(), append([]float64(nil), e.m.RawSymmetric().Data...))
}

// TestKFACMovingAverages runs K-FAC on records whose statistics change at
// every update, with statistics every StatsPeriod = 2 updates and inverses
// every update, and checks after every update that the factors equal the
// recurrence M_k = ε_k M_{k−1} + (1 − ε_k) X_k, ε_k = min(1 − 1/k, ε)
// (Martens & Grosse 2015 §5), to 1e-12, and that the update equals the
// dense solve with those factors, to 1e-9.
func TestKFACMovingAverages(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 2))
	const out, in, n = 3, 4, 10
	l := kfRandomLayer(rng, out, in, n, n)
	l.BackScale = 1.0 / n
	opt := &KFAC{Rules: Rules{StatsPeriod: 2, InversePeriod: 1, Damping: 0.05, AbsoluteDamping: true, NormConstraint: math.Inf(1)}, Decay: 0.6}
	ra, rg := kfEMA{eps: 0.6}, kfEMA{eps: 0.6}
	for step := 1; step <= 9; step++ {
		kfRefreshRecord(rng, l)
		due := opt.StatsDue()
		if due != (step%2 == 1) {
			t.Fatalf("step %d: StatsDue = %v", step, due)
		}
		if due {
			ra.add(kfInputFactor(l.Input, n))
			rg.add(kfOutputFactor(l))
		}
		want := kfDenseStep(t, ra.m, rg.m, 0.05, 1, kfGradThetaOf(l))
		before := kfThetaOf(l)
		if err := opt.Step([]*secondorder.Layer{l}); err != nil {
			t.Fatal(err)
		}
		a, g := opt.Factors(0)
		if !mat.EqualApprox(a, ra.m, 1e-12) || !mat.EqualApprox(g, rg.m, 1e-12) {
			t.Fatalf("step %d: factors differ from the recurrence", step)
		}
		if got := kfDiff(kfThetaOf(l), before); !mat.EqualApprox(got, want, 1e-9) {
			t.Fatalf("step %d: update differs from the dense solve with the averaged factors", step)
		}
	}
}

// TestKFACInversePeriod checks that between inverse refreshes the cached
// factorization is used: with InversePeriod = 3 and statistics changing at
// every update, update t is the dense solve with the averages of the last
// refresh (every update of the warm-up 1, 2, 3, then 4, 7, 10), to 1e-9,
// and not the one with the current averages (which differ by more than
// 1e-3, so that the test can fail).
func TestKFACInversePeriod(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	const out, in, n = 2, 3, 8
	l := kfRandomLayer(rng, out, in, n, n)
	l.BackScale = 1.0 / n
	opt := &KFAC{Rules: Rules{InversePeriod: 3, Damping: 0.01, NormConstraint: math.Inf(1)}}
	ra, rg := kfEMA{eps: 0.95}, kfEMA{eps: 0.95}
	var ca, cg *mat.SymDense // averages at the last refresh
	for step := 1; step <= 11; step++ {
		kfRefreshRecord(rng, l)
		ra.add(kfInputFactor(l.Input, n))
		rg.add(kfOutputFactor(l))
		refresh := step <= 3 || (step-1)%3 == 0
		if refresh {
			ca, cg = ra.copy(), rg.copy()
		}
		lam := 0.01 * kfMeanEig(ca, cg)
		want := kfDenseStep(t, ca, cg, lam, 1, kfGradThetaOf(l))
		fresh := kfDenseStep(t, ra.m, rg.m, 0.01*kfMeanEig(ra.m, rg.m), 1, kfGradThetaOf(l))
		before := kfThetaOf(l)
		if err := opt.Step([]*secondorder.Layer{l}); err != nil {
			t.Fatal(err)
		}
		got := kfDiff(kfThetaOf(l), before)
		if !mat.EqualApprox(got, want, 1e-9) {
			t.Fatalf("step %d: update is not the solve with the cached factors", step)
		}
		if !refresh && mat.EqualApprox(got, fresh, 1e-3) {
			t.Fatalf("step %d: update equals the solve with fresh factors: the test cannot tell", step)
		}
		if opt.Report().Refreshed != refresh {
			t.Fatalf("step %d: Refreshed = %v, want %v", step, opt.Report().Refreshed, refresh)
		}
	}
}

// TestKFACStatsDueSkipsBack checks that Back is read only when StatsDue.
func TestKFACStatsDueSkipsBack(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 9))
	l := kfRandomLayer(rng, 2, 3, 6, 6)
	setQuadraticRisk(l) // the default norm constraint reads it
	opt := &KFAC{Rules: Rules{StatsPeriod: 3}}
	for step := 1; step <= 6; step++ {
		back := l.Back
		if !opt.StatsDue() {
			l.Back = nil
		}
		if err := opt.Step([]*secondorder.Layer{l}); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		l.Back = back
		kfRefreshRecord(rng, l)
	}
	l.Back = nil
	if !opt.StatsDue() {
		t.Fatal("StatsDue false at update 7")
	}
	if err := opt.Step([]*secondorder.Layer{l}); !errors.Is(err, ErrMissingCapability) {
		t.Fatalf("Step without Back when due: %v, want ErrMissingCapability", err)
	}
}

// kfLMStub returns Problem closures for a one-layer problem whose "loss" is
// chosen so that the LM reduction ratio is rho: the first call (before the
// update) returns h0 and snapshots Θ; the second returns
// h0 + rho (M(δ) − M(0)), with the model computed here independently from
// the observed update δ, F = c I (GNVec) or the K-FAC factors, and λ.
func kfLMStub(t *testing.T, opt *KFAC, l *secondorder.Layer, rho, c float64, useGNVec bool, calls *int) {
	const h0 = 10.0
	l.Risk = h0 // the risk before the update, read by the norm constraint
	var before, grad *mat.Dense
	opt.Problem.Loss = func() (float64, error) {
		*calls++
		if before == nil {
			before, grad = kfThetaOf(l), kfGradThetaOf(l)
			return h0, nil
		}
		d := kfDiff(kfThetaOf(l), before)
		nd := mat.Norm(d, 2)
		quad := opt.Report().Damping * nd * nd
		if useGNVec {
			quad += c * nd * nd
		} else {
			a, g := opt.Factors(0)
			var gd, gda mat.Dense
			gd.Mul(g, d)
			gda.Mul(&gd, a)
			var e mat.Dense
			e.MulElem(&gda, d)
			quad += mat.Sum(&e)
		}
		var e mat.Dense
		e.MulElem(grad, d)
		model := 0.5*quad + mat.Sum(&e)
		before = nil
		return h0 + rho*model, nil
	}
	if useGNVec {
		opt.Problem.GNVec = func(dst, v []secondorder.Direction) error {
			for j := range v {
				dst[j].W.Scale(c, v[j].W)
				dst[j].B.ScaleVec(c, v[j].B)
			}
			return nil
		}
	}
}

// TestKFACLevenbergMarquardt checks the damping adaptation of Martens &
// Grosse §6.5 with stub closures that produce a chosen ρ: λ ← λ/ω for
// ρ < 1/4, λ ← ωλ for ρ > 3/4, unchanged between, ω = (19/20)^T2, applied
// only at updates T2, 2T2, …; the model uses GNVec when given and the K-FAC
// factors otherwise. ρ is recovered to 1e-9 and λ to 1e-12 relative.
func TestKFACLevenbergMarquardt(t *testing.T) {
	tests := []struct {
		name    string
		rho     float64
		period  int
		gnvec   bool
		c       float64
		wantMul float64 // λ after / λ before, with ω = 0.95^period
	}{
		{name: "bad/gnvec", rho: 0.1, period: 1, gnvec: true, c: 2, wantMul: 1 / 0.95},
		{name: "good/gnvec", rho: 0.9, period: 1, gnvec: true, c: 2, wantMul: 0.95},
		{name: "middle/gnvec", rho: 0.5, period: 1, gnvec: true, c: 2, wantMul: 1},
		{name: "negative/kfac", rho: -3, period: 1, wantMul: 1 / 0.95},
		{name: "good/kfac", rho: 1, period: 1, wantMul: 0.95},
		{name: "middle/kfac", rho: 0.3, period: 1, wantMul: 1},
		{name: "good/period5", rho: 0.8, period: 5, gnvec: true, c: 0.5, wantMul: math.Pow(0.95, 5)},
		{name: "bad/period5", rho: 0.2, period: 5, wantMul: math.Pow(0.95, -5)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, 1))
			l := kfRandomLayer(rng, 3, 2, 7, 7)
			const lambda0 = 0.5
			opt := &KFAC{Rules: Rules{Damping: lambda0, AbsoluteDamping: true, AdaptDamping: true, LMPeriod: tc.period, Rate: 0.2}}
			calls := 0
			kfLMStub(t, opt, l, tc.rho, tc.c, tc.gnvec, &calls)
			for step := 1; step < tc.period; step++ {
				if err := opt.Step([]*secondorder.Layer{l}); err != nil {
					t.Fatal(err)
				}
				if calls != 0 || opt.Report().Damping != lambda0 {
					t.Fatalf("update %d of %d: Loss called %d times, λ = %g", step, tc.period, calls, opt.Report().Damping)
				}
			}
			if err := opt.Step([]*secondorder.Layer{l}); err != nil {
				t.Fatal(err)
			}
			if calls != 2 {
				t.Fatalf("Loss called %d times at update %d, want 2", calls, tc.period)
			}
			r := opt.Report()
			if !scalar.EqualWithinAbsOrRel(r.Rho, tc.rho, 1e-9, 1e-9) {
				t.Errorf("ρ = %g, want %g", r.Rho, tc.rho)
			}
			if got := opt.Report().Damping / lambda0; !scalar.EqualWithinRel(got, tc.wantMul, 1e-12) {
				t.Errorf("λ multiplied by %g, want %g", got, tc.wantMul)
			}
			if r.Fallbacks != 0 {
				t.Errorf("fallbacks: %d (%s)", r.Fallbacks, r.LastFallback)
			}
		})
	}
}

// TestKFACDampingBounds checks that the damping adapted by LM stays
// within [MinDamping, MaxDamping], by default 0.3 and 10⁴ times the initial
// damping: 200 updates of ρ = 0.9 (λ ← 0.95 λ each) or ρ = 0.1 (λ ← λ/0.95)
// would move λ by a factor 3·10⁴ without them.
func TestKFACDampingBounds(t *testing.T) {
	const lambda0 = 0.5
	for _, tc := range []struct {
		name     string
		rho      float64
		min, max float64
		want     float64
	}{
		{"default floor", 0.9, 0, 0, DefaultMinDampingRatio * lambda0},
		{"default ceiling", 0.1, 0, 0, DefaultMaxDampingRatio * lambda0},
		{"floor", 0.9, 0.1, 0, 0.1},
		{"ceiling", 0.1, 0, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(8, 2))
			l := kfRandomLayer(rng, 3, 2, 7, 7)
			opt := &KFAC{Rules: Rules{Damping: lambda0, AbsoluteDamping: true, AdaptDamping: true, LMPeriod: 1, Rate: 0.2,
				MinDamping: tc.min, MaxDamping: tc.max}}
			calls := 0
			kfLMStub(t, opt, l, tc.rho, 2, true, &calls)
			reached := -1
			for step := 0; step < 200; step++ {
				if err := opt.Step([]*secondorder.Layer{l}); err != nil {
					t.Fatal(err)
				}
				d := opt.Report().Damping
				if d < tc.want*(1-1e-12) && tc.rho > 0.75 || d > tc.want*(1+1e-12) && tc.rho < 0.25 {
					t.Fatalf("update %d: λ = %g beyond the bound %g", step, d, tc.want)
				}
				if reached < 0 && scalar.EqualWithinRel(d, tc.want, 1e-12) {
					reached = step
				}
			}
			if reached < 0 {
				t.Errorf("λ = %g after 200 updates, never reached the bound %g", opt.Report().Damping, tc.want)
			}
		})
	}
}

// TestKFACLMNoPredictedDecrease checks that a model predicting no decrease
// (huge curvature from GNVec against a fixed step) counts as a failure:
// λ is raised and the fallback reported.
func TestKFACLMNoPredictedDecrease(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 3))
	l := kfRandomLayer(rng, 3, 2, 7, 7)
	opt := &KFAC{Rules: Rules{Damping: 0.5, AbsoluteDamping: true, AdaptDamping: true, LMPeriod: 1}}
	calls := 0
	kfLMStub(t, opt, l, 0.9, 1e8, true, &calls)
	if err := opt.Step([]*secondorder.Layer{l}); err != nil {
		t.Fatal(err)
	}
	r := opt.Report()
	if r.Fallbacks != 1 || !strings.Contains(r.LastFallback, "LM") {
		t.Errorf("report %+v, want one LM fallback", r)
	}
	if got := opt.Report().Damping; !scalar.EqualWithinRel(got, 0.5/0.95, 1e-12) {
		t.Errorf("λ = %g, want %g", got, 0.5/0.95)
	}
}

// TestKFACAutoRate checks the learning rate and momentum of Martens & Grosse
// §7 on the two-layer tanh network with its exact GN-vector product: at the
// second update (α, μ) solve the 2×2 system built here from the K-FAC
// direction U (read from the optimizer), the previous update δ₀ and the
// GN products, to 1e-8 relative, and the update is −αU + μδ₀ to 1e-12.
func TestKFACAutoRate(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	net := newKFNet(rng, []int{3, 4, 2}, []bool{true, false}, 16)
	const lambda = 0.01
	opt := &KFAC{Rules: Rules{AutoRate: true, Damping: lambda, AbsoluteDamping: true}}
	opt.Problem.GNVec = net.gnVec
	var prev []*mat.Dense
	for step := 1; step <= 2; step++ {
		net.fillRecords(rng, "mc", 0)
		before, grads := net.thetas()
		if err := opt.Step(net.layers); err != nil {
			t.Fatal(err)
		}
		r := opt.Report()
		if r.Fallbacks != 0 {
			t.Fatalf("step %d: fallback %s", step, r.LastFallback)
		}
		var deltas []*mat.Dense
		for j, l := range net.layers {
			deltas = append(deltas, kfDiff(kfThetaOf(l), before[j]))
		}
		if step == 2 {
			// U from the engine's buffers, as Directions.
			u := net.dirs()
			d0 := net.dirs()
			for j, l := range net.layers {
				out, in := l.Dims()
				th := &opt.e.layers[j].u
				u[j].W.Copy(th.Slice(0, out, 0, in))
				u[j].B.CopyVec(th.ColView(in))
				d0[j].W.Copy(prev[j].Slice(0, out, 0, in))
				d0[j].B.CopyVec(prev[j].ColView(in))
			}
			net.setParamsFrom(before)
			fu, fd := net.dirs(), net.dirs()
			net.gnVec(fu, u)
			net.gnVec(fd, d0)
			dot := func(x, y []secondorder.Direction) float64 {
				s := 0.0
				for j := range x {
					var e mat.Dense
					e.MulElem(x[j].W, y[j].W)
					s += mat.Sum(&e) + mat.Dot(x[j].B, y[j].B)
				}
				return s
			}
			g := net.dirs()
			for j, l := range net.layers {
				out, in := l.Dims()
				g[j].W.Copy(grads[j].Slice(0, out, 0, in))
				g[j].B.CopyVec(grads[j].ColView(in))
			}
			a11 := dot(u, fu) + lambda*dot(u, u)
			a12 := -(dot(u, fd) + lambda*dot(u, d0))
			a22 := dot(d0, fd) + lambda*dot(d0, d0)
			b1, b2 := -dot(g, u), dot(g, d0)
			A := mat.NewDense(2, 2, []float64{a11, a12, a12, a22})
			var x mat.VecDense
			if err := x.SolveVec(A, mat.NewVecDense(2, []float64{-b1, -b2})); err != nil {
				t.Fatal(err)
			}
			if !scalar.EqualWithinRel(r.Rate, x.AtVec(0), 1e-8) || !scalar.EqualWithinRel(r.Momentum, x.AtVec(1), 1e-8) {
				t.Errorf("α, μ = %g, %g, want %g, %g", r.Rate, r.Momentum, x.AtVec(0), x.AtVec(1))
			}
			for j := range net.layers {
				var want, tmp mat.Dense
				want.Scale(-r.Rate, &opt.e.layers[j].u)
				tmp.Scale(r.Momentum, prev[j])
				want.Add(&want, &tmp)
				if !mat.EqualApprox(deltas[j], &want, 1e-12) {
					t.Errorf("layer %d: update is not −αU + μδ₀", j)
				}
			}
		}
		prev = deltas
	}
}

// setParamsFrom sets every layer's Θ = [W b].
func (t *kfNet) setParamsFrom(thetas []*mat.Dense) {
	for j, l := range t.layers {
		out, in := l.Dims()
		l.W.Copy(thetas[j].Slice(0, out, 0, in))
		l.B.CopyVec(thetas[j].ColView(in))
	}
}

// TestKFACAutoRateFallback checks that a GNVec with negative curvature makes
// AutoRate fall back to the fixed Rate, reported, with a finite update equal
// to the fixed-rate one (to 1e-12): with the default norm constraint, which
// binds here and then bounds the fixed rate of the fallback as it does the
// reference's, and without it, where the rate is Rate itself.
func TestKFACAutoRateFallback(t *testing.T) {
	for _, tc := range []struct {
		name  string
		c     float64 // NormConstraint
		bound bool    // the constraint binds
	}{
		{"default-constraint", 0, true},
		{"no-constraint", math.Inf(1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(4, 5))
			l := kfRandomLayer(rng, 2, 3, 9, 9)
			setQuadraticRisk(l) // the default norm constraint reads it
			l2 := &secondorder.Layer{}
			*l2 = *l
			l2.W, l2.B = mat.DenseCopyOf(l.W), mat.VecDenseCopyOf(l.B)
			opt := &KFAC{Rules: Rules{AutoRate: true, Rate: 0.3, Damping: 0.01, AbsoluteDamping: true, NormConstraint: tc.c}}
			opt.Problem.GNVec = func(dst, v []secondorder.Direction) error {
				for j := range v {
					dst[j].W.Scale(-1, v[j].W)
					dst[j].B.ScaleVec(-1, v[j].B)
				}
				return nil
			}
			if err := opt.Step([]*secondorder.Layer{l}); err != nil {
				t.Fatal(err)
			}
			ref := &KFAC{Rules: Rules{Rate: 0.3, Damping: 0.01, AbsoluteDamping: true, NormConstraint: tc.c}}
			if err := ref.Step([]*secondorder.Layer{l2}); err != nil {
				t.Fatal(err)
			}
			r, rr := opt.Report(), ref.Report()
			if rr.Constrained != tc.bound || (rr.Rate == 0.3) == tc.bound {
				t.Fatalf("reference report %+v: constrained %v, want %v", rr, rr.Constrained, tc.bound)
			}
			if r.Fallbacks != 1 || r.Rate != rr.Rate || r.Constrained != tc.bound || !strings.Contains(r.LastFallback, "fixed Rate") {
				t.Fatalf("report %+v, want a fallback to the fixed rate %g", r, rr.Rate)
			}
			if !finiteDense(l.W) || !mat.EqualApprox(kfThetaOf(l), kfThetaOf(l2), 1e-12) {
				t.Fatal("fallback update differs from the fixed-rate update")
			}
		})
	}
}

// TestKFACDecreasesLoss trains the two-layer tanh regression from a fixed
// seed with Monte-Carlo Fisher vectors, in three configurations, and checks
// that the risk falls below a third of its initial value in 30 updates.
func TestKFACDecreasesLoss(t *testing.T) {
	tests := []struct {
		name string
		opt  KFAC
	}{
		{name: "defaults", opt: KFAC{}},
		{name: "momentum/subbatch", opt: KFAC{Rules: Rules{Rate: 0.5, Momentum: 0.5, InversePeriod: 5}}},
		{name: "LM+AutoRate", opt: KFAC{Rules: Rules{AdaptDamping: true, AutoRate: true, Damping: 1, LMPeriod: 2}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 3))
			net := newKFNet(rng, []int{4, 8, 3}, []bool{true, false}, 64)
			opt := tc.opt
			opt.Problem = Problem{Loss: func() (float64, error) { return net.forward(), nil }, GNVec: net.gnVec}
			r0 := net.forward()
			for step := 0; step < 30; step++ {
				m := 64
				if tc.name == "momentum/subbatch" {
					m = 32
				}
				net.fillRecords(rng, "sub", m)
				if err := opt.Step(net.layers); err != nil {
					t.Fatal(err)
				}
			}
			r1 := net.forward()
			if !(r1 < r0/3) {
				t.Errorf("risk %g → %g, want below a third", r0, r1)
			}
			t.Logf("risk %g → %g, report %+v", r0, r1, opt.Report())
		})
	}
}

// TestKFACBadSettings checks that invalid settings are refused by Validate
// with an error naming the setting, and by Step with the same error, before
// anything is changed.
func TestKFACBadSettings(t *testing.T) {
	tests := []struct {
		opt  KFAC
		want string
	}{
		{KFAC{Rules: Rules{Damping: -1}}, "Damping=-1"},
		{KFAC{Rules: Rules{Damping: math.Inf(1)}}, "Damping=+Inf"},
		{KFAC{Rules: Rules{Rate: -0.1}}, "Rate=-0.1"},
		{KFAC{Rules: Rules{Rate: math.NaN()}}, "Rate=NaN"},
		{KFAC{Rules: Rules{Momentum: 1}}, "Momentum=1"},
		{KFAC{Rules: Rules{Momentum: -0.5}}, "Momentum=-0.5"},
		{KFAC{Decay: 1}, "Decay=1, want in [0, 1)"},
		{KFAC{Decay: 1.5}, "Decay=1.5"},
		{KFAC{Decay: -0.2}, "Decay=-0.2"},
		{KFAC{Rules: Rules{StatsPeriod: -1}}, "StatsPeriod=-1"},
		{KFAC{Rules: Rules{InversePeriod: -3}}, "InversePeriod=-3"},
		{KFAC{Rules: Rules{LMPeriod: -1}}, "LMPeriod=-1"},
		{KFAC{Rules: Rules{NormConstraint: -1}}, "NormConstraint=-1"},
		{KFAC{Rules: Rules{NormConstraint: math.NaN()}}, "NormConstraint=NaN"},
		{KFAC{Rules: Rules{ExtraRate: -1}}, "ExtraRate=-1"},
		{KFAC{Rules: Rules{MaxMomentum: 1}}, "MaxMomentum=1"},
		{KFAC{Rules: Rules{MaxMomentum: -0.1}}, "MaxMomentum=-0.1"},
		{KFAC{Rules: Rules{MinDamping: -1}}, "MinDamping=-1"},
		{KFAC{Rules: Rules{MaxDamping: math.Inf(1)}}, "MaxDamping=+Inf"},
		{KFAC{Rules: Rules{MinDamping: 2, MaxDamping: 1}}, "MinDamping=2 > MaxDamping=1"},
		{KFAC{Rules: Rules{Undamped: true, Damping: 0.1}}, "Undamped with Damping=0.1"},
		{KFAC{Rules: Rules{Retry: kron.Retry{Growth: 0.5}}}, "Retry {Tries:0 Growth:0.5}"},
		{KFAC{Rules: Rules{Retry: kron.Retry{Tries: -1}}}, "Retry {Tries:-1 Growth:0}"},
	}
	for _, tc := range tests {
		rng := rand.New(rand.NewPCG(1, 1))
		l := kfRandomLayer(rng, 2, 2, 4, 4)
		opt := tc.opt
		if err := opt.Validate(); err == nil || !strings.HasPrefix(err.Error(), "optim: KFAC: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: Validate: %v, want an error containing %q", tc.opt, err, tc.want)
		}
		checkRefused(t, &opt, []*secondorder.Layer{l}, "optim: KFAC: ", tc.want)
	}
	var ok KFAC
	if err := ok.Validate(); err != nil {
		t.Errorf("zero value: %v", err)
	}
	if err := (&KFAC{Rules: Rules{NormConstraint: math.Inf(1)}}).Validate(); err != nil {
		t.Errorf("NormConstraint +Inf (no constraint): %v", err)
	}
}

// TestKFACBadData checks that NaN or Inf in the records, a missing
// capability or a failing closure is an error that leaves the parameters
// unchanged and the update uncounted.
func TestKFACBadData(t *testing.T) {
	tests := []struct {
		name    string
		opt     KFAC
		spoil   func(l *secondorder.Layer)
		want    string
		missing bool
	}{
		{name: "NaN Back", spoil: func(l *secondorder.Layer) { l.Back.Set(1, 0, math.NaN()) }, want: "Back holds NaN"},
		{name: "Inf Grad", spoil: func(l *secondorder.Layer) { l.Grad.Set(0, 1, math.Inf(-1)) }, want: "Grad holds NaN or Inf"},
		{name: "NaN GradW", spoil: func(l *secondorder.Layer) { l.GradW.Set(0, 0, math.NaN()) }, want: "GradW holds"},
		{name: "NaN Input", spoil: func(l *secondorder.Layer) { l.Input.Set(2, 1, math.NaN()) }, want: "Input holds"},
		{name: "negative BackScale", spoil: func(l *secondorder.Layer) { l.BackScale = -1 }, want: "BackScale = -1, want finite and ≥ 0"},
		{name: "+Inf BackScale", spoil: func(l *secondorder.Layer) { l.BackScale = math.Inf(1) }, want: "BackScale = +Inf, want finite and ≥ 0"},
		{name: "NaN BackScale", spoil: func(l *secondorder.Layer) { l.BackScale = math.NaN() }, want: "BackScale holds NaN"},
		{name: "no Back", spoil: func(l *secondorder.Layer) { l.Back = nil }, want: "no Back", missing: true},
		{name: "no Loss", opt: KFAC{Rules: Rules{AdaptDamping: true}}, spoil: func(*secondorder.Layer) {}, want: "Problem.Loss", missing: true},
		{name: "no GNVec", opt: KFAC{Rules: Rules{AutoRate: true}}, spoil: func(*secondorder.Layer) {}, want: "Problem.GNVec", missing: true},
		{name: "Loss error", opt: KFAC{Rules: Rules{AdaptDamping: true, LMPeriod: 1, Problem: Problem{Loss: func() (float64, error) { return 0, errors.New("boom") }}}},
			spoil: func(*secondorder.Layer) {}, want: "Problem.Loss before the update: boom"},
		{name: "GNVec error", opt: KFAC{Rules: Rules{AutoRate: true, Problem: Problem{GNVec: func(_, _ []secondorder.Direction) error { return errors.New("boom") }}}},
			spoil: func(*secondorder.Layer) {}, want: "Problem.GNVec: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(2, 2))
			l := kfRandomLayer(rng, 2, 3, 5, 5)
			setQuadraticRisk(l) // the default norm constraint reads it
			tc.spoil(l)
			opt := tc.opt
			checkFailedStep(t, &opt, []*secondorder.Layer{l}, "optim: KFAC: ", tc.want, tc.missing)
		})
	}
}

// TestKFACNeeds checks that Needs follows the configuration.
func TestKFACNeeds(t *testing.T) {
	for _, tc := range []struct {
		opt  KFAC
		want Needs
	}{
		{KFAC{}, Needs{Back: true}},
		{KFAC{Rules: Rules{AdaptDamping: true}}, Needs{Back: true, Loss: true}},
		{KFAC{Rules: Rules{AutoRate: true}}, Needs{Back: true, GNVec: true}},
		{KFAC{Rules: Rules{AdaptDamping: true, AutoRate: true}}, Needs{Back: true, Loss: true, GNVec: true}},
	} {
		if got := tc.opt.Needs(); got != tc.want {
			t.Errorf("%+v: Needs = %+v, want %+v", tc.opt, got, tc.want)
		}
	}
}

// TestKFACRankDeficientFactor checks that a rank-deficient input factor
// (constant inputs: Ā is the all-ones matrix) with a damping lost to
// rounding (λ = 1e-300) has its damping raised by the retry policy and
// reported through OnDampingRaised and Report, with a finite update; and
// that without retries the failure is an error that changes nothing.
func TestKFACRankDeficientFactor(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	const n = 8
	l := kfRandomLayer(rng, 2, 2, n, n)
	l.Input = mat.NewDense(n, 2, []float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1})
	setQuadraticRisk(l) // the default norm constraint reads it
	w := mat.DenseCopyOf(l.W)

	fail := &KFAC{Rules: Rules{Damping: 1e-300, AbsoluteDamping: true, Retry: kron.Retry{Tries: 1}}}
	err := checkFailedStep(t, fail, []*secondorder.Layer{l}, "optim: KFAC: ", "layer 0: block not positive definite", false)
	// The failing factor is the input factor Ā, the A of Ā ⊗ G.
	var fe *kron.FactorError
	if !errors.As(err, &fe) || fe.Factor != "A" {
		t.Fatalf("error %v does not name the input factor Ā (kron.FactorError with Factor \"A\")", err)
	}
	if !errors.Is(err, kron.ErrNotPositiveDefinite) {
		t.Fatal("failure does not wrap kron.ErrNotPositiveDefinite")
	}

	var raised []float64
	opt := &KFAC{Rules: Rules{Damping: 1e-300, AbsoluteDamping: true, Retry: kron.Retry{Tries: 40, Growth: 1e10},
		OnDampingRaised: func(layer int, d float64) {
			if layer != 0 {
				t.Errorf("layer %d reported", layer)
			}
			raised = append(raised, d)
		}}}
	if err := opt.Step([]*secondorder.Layer{l}); err != nil {
		t.Fatal(err)
	}
	if len(raised) != 1 || !(raised[0] > 1e-300) || opt.Report().DampingRaised != 1 {
		t.Fatalf("raised %v, report %+v", raised, opt.Report())
	}
	if !finiteDense(l.W) || !finiteVec(l.B) || mat.Equal(w, l.W) {
		t.Fatal("update not finite or not applied")
	}
	t.Logf("damping raised to %g", raised[0])
}

// TestKFACNoAllocSteadyState checks that an update between refreshes, and
// one with a refresh, allocate nothing once the buffers exist.
func TestKFACNoAllocSteadyState(t *testing.T) {
	testutil.SkipAllocsUnderRace(t)
	rng := rand.New(rand.NewPCG(9, 9))
	layers := []*secondorder.Layer{kfRandomLayer(rng, 5, 6, 20, 10), kfRandomLayer(rng, 3, 5, 20, 10)}
	setQuadraticRisk(layers...) // the default norm constraint reads it
	for _, period := range []int{1000, 1} {
		opt := &KFAC{Rules: Rules{InversePeriod: period, Momentum: 0.5}}
		for i := 0; i < 3; i++ {
			if err := opt.Step(layers); err != nil {
				t.Fatal(err)
			}
		}
		allocs := testing.AllocsPerRun(10, func() {
			if err := opt.Step(layers); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("InversePeriod %d: %g allocations per update", period, allocs)
		}
	}
}

// TestKFACToyNetHelpers checks the test network itself: the GN-vector product
// against finite differences of the outputs (vᵀFv = (2/n) Σ‖J_i v‖², 1e-6
// relative) and the exact GN Back against the GN-vector product through
// the layer blocks (curvature.DenseBlock v = (Fv)_l for v on layer l, 1e-10).
func TestKFACToyNetHelpers(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	net := newKFNet(rng, []int{3, 4, 2}, []bool{true, false}, 6)
	net.forward()
	v := net.dirs()
	for j := range v {
		r, c := v[j].W.Dims()
		v[j].W.Copy(testutil.RandDense(rng, r, c, 1))
		v[j].B.CopyVec(mat.NewVecDense(r, testutil.RandSlice(rng, r, 1)))
	}
	fv := net.dirs()
	net.gnVec(fv, v)
	vfv := 0.0
	for j := range v {
		var e mat.Dense
		e.MulElem(v[j].W, fv[j].W)
		vfv += mat.Sum(&e) + mat.Dot(v[j].B, fv[j].B)
	}
	const eps = 1e-5
	p := net.params()
	shift := func(s float64) *mat.Dense {
		net.setParams(p)
		for j, l := range net.layers {
			l.W.Add(l.W, kfScaled(s, v[j].W))
			l.B.AddScaledVec(l.B, s, v[j].B)
		}
		net.forward()
		return mat.DenseCopyOf(net.hs[len(net.layers)])
	}
	var jv mat.Dense
	jv.Sub(shift(eps), shift(-eps))
	jv.Scale(1/(2*eps), &jv)
	net.setParams(p)
	fd := 2 * mat.Norm(&jv, 2) * mat.Norm(&jv, 2) / 6
	if !scalar.EqualWithinRel(vfv, fd, 1e-6) {
		t.Fatalf("vᵀFv = %g, finite differences %g", vfv, fd)
	}
	net.forward()
	idx := net.backGN()
	for j, l := range net.layers {
		l.BackExamples = idx
		var b mat.SymDense
		curvature.DenseBlock(&b, l)
		one := net.dirs()
		one[j] = v[j]
		out := net.dirs()
		net.gnVec(out, one)
		var vv, want, got mat.VecDense
		kron.Vec(&vv, kfThetaOfDir(v[j]))
		kron.Vec(&want, kfThetaOfDir(out[j]))
		got.MulVec(&b, &vv)
		if !mat.EqualApprox(&got, &want, 1e-10) {
			t.Fatalf("layer %d: Block·v ≠ (F v)_l", j)
		}
	}
}

func kfScaled(s float64, m *mat.Dense) *mat.Dense {
	var d mat.Dense
	d.Scale(s, m)
	return &d
}

func kfThetaOfDir(d secondorder.Direction) *mat.Dense {
	out, in := d.W.Dims()
	t := mat.NewDense(out, in+1, nil)
	t.Slice(0, out, 0, in).(*mat.Dense).Copy(d.W)
	t.ColView(in).(*mat.VecDense).CopyVec(d.B)
	return t
}
