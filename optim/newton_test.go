package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// newtonDenseStep is the reference block Newton update of one layer,
// vec(ΔΘ) = −η (B + λI)⁻¹ ∇θ, with the block of eq. 3.3.2 formed here with
// plain products from the record's Input and Back and the example idx[r] of
// each row r of Back,
//
//	B = s Σ_r z_r z_rᵀ,   z_r = h̃_{idx[r]} ⊗ g_r,   s = BackScale (1/n when zero),
//
// and the system solved by LU (mat.Dense.SolveVec), returned as ΔΘ
// (n_out × (n_in+1)). relative scales λ by tr(B)/P.
func newtonDenseStep(t *testing.T, l *secondorder.Layer, idx []int, lambda float64, relative bool, eta float64) *mat.Dense {
	t.Helper()
	out, in := l.Dims()
	m, _ := l.Back.Dims()
	if len(idx) != m {
		t.Fatalf("%d example indices for %d rows of Back", len(idx), m)
	}
	s := l.BackScale
	if s == 0 {
		n, _ := l.Input.Dims()
		s = 1 / float64(n)
	}
	p := out * (in + 1)
	bd := mat.NewDense(p, p, nil)
	z := mat.NewVecDense(p, nil)
	for r := 0; r < m; r++ {
		for c := 0; c <= in; c++ {
			h := 1.0
			if c < in {
				h = l.Input.At(idx[r], c)
			}
			for o := 0; o < out; o++ {
				z.SetVec(c*out+o, h*l.Back.At(r, o))
			}
		}
		var zz mat.Dense
		zz.Outer(s, z, z)
		bd.Add(bd, &zz)
	}
	if relative {
		lambda *= mat.Trace(bd) / float64(p)
	}
	for i := 0; i < p; i++ {
		bd.Set(i, i, bd.At(i, i)+lambda)
	}
	var g, d mat.VecDense
	kron.Vec(&g, kfGradThetaOf(l))
	if err := d.SolveVec(bd, &g); err != nil {
		t.Fatal(err)
	}
	d.ScaleVec(-eta, &d)
	var dt mat.Dense
	kron.Unvec(&dt, &d, out, in+1)
	return &dt
}

// newtonGNIndex returns the example of each row of exact GN vectors with k
// consecutive rows per example, for n examples.
func newtonGNIndex(n, k int) []int {
	idx := make([]int, n*k)
	for r := range idx {
		idx[r] = r / k
	}
	return idx
}

// TestNewtonStepMatchesDense checks one block Newton update of every layer
// against the dense solve with the block formed by the test, for the
// example layouts of Back: exact GN (k consecutive rows per example,
// BackExamples nil), Monte-Carlo (one row per example), a sub-batch, and two
// samples per example laid out sample by sample (each record's
// BackExamples given). With the norm constraint (relative to the risk, the
// records' Risk) the rate is min(η, sqrt(C R/∇ᵀU)) over all layers, with
// ∇ᵀU from the dense solves. Tolerance 1e-9 per entry.
func TestNewtonStepMatchesDense(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name   string
		sizes  []int
		tanh   []bool
		back   string
		opt    Newton
		lambda float64
		rel    bool
		bound  bool // the norm constraint must bind
	}{
		{name: "linear/gn/defaults", sizes: []int{3, 2}, tanh: []bool{false}, back: "gn", opt: Newton{}, lambda: DefaultNewtonDamping, rel: true, bound: true},
		{name: "linear/gn/relative", sizes: []int{3, 2}, tanh: []bool{false}, back: "gn",
			opt: Newton{Rules: Rules{NormConstraint: inf}}, lambda: DefaultNewtonDamping, rel: true},
		{name: "tanh2/gn/absolute", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "gn",
			opt: Newton{Rules: Rules{Damping: 0.05, AbsoluteDamping: true, Rate: 0.7, NormConstraint: inf}}, lambda: 0.05},
		{name: "tanh2/mc/relative", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "mc",
			opt: Newton{Rules: Rules{Damping: 0.1, NormConstraint: inf}}, lambda: 0.1, rel: true},
		{name: "tanh2/subbatch", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "sub",
			opt: Newton{Rules: Rules{Damping: 0.2, AbsoluteDamping: true, NormConstraint: inf}}, lambda: 0.2},
		{name: "tanh2/samples-major", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "samples",
			opt: Newton{Rules: Rules{Damping: 0.02, NormConstraint: inf}}, lambda: 0.02, rel: true},
		{name: "tanh2/mc/constrained", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "mc",
			opt: Newton{Rules: Rules{Damping: 0.1, Rate: 0.8, NormConstraint: 0.02}}, lambda: 0.1, rel: true, bound: true},
	}
	const n = 10
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(17, 4))
			net := newKFNet(rng, tc.sizes, tc.tanh, n)
			opt := tc.opt
			idx, _ := net.fillRecords(rng, tc.back, 4)
			if tc.back == "samples" {
				// Two Monte-Carlo samples per example, row s·n + i for
				// sample s of example i (the layout of curvature.Backprop).
				k := tc.sizes[len(tc.sizes)-1]
				v := testutil.RandDense(rng, 2*n, k, -math.Sqrt2)
				idx = make([]int, 2*n)
				for r := range idx {
					idx[r] = r % n
				}
				net.propagate(v, idx, func(j int, b *mat.Dense) {
					net.layers[j].Back = b
					net.layers[j].BackScale = 1.0 / (2 * n)
					net.layers[j].BackExamples = idx
				})
			}
			var us, before []*mat.Dense
			gu := 0.0 // ∇ᵀU
			for _, l := range net.layers {
				u := newtonDenseStep(t, l, idx, tc.lambda, tc.rel, -1) // U = (B + λI)⁻¹∇θ
				us = append(us, u)
				gu += mat.Sum(kfMulElem(u, kfGradThetaOf(l)))
				before = append(before, kfThetaOf(l))
			}
			eta := opt.Rate
			if eta == 0 {
				eta = 1
			}
			c := opt.NormConstraint
			if c == 0 {
				c = DefaultNormConstraint
			}
			c *= net.layers[0].Risk // the constraint is relative to the risk
			bound := eta*eta*gu > c
			if bound {
				eta = math.Sqrt(c / gu)
			}
			if bound != tc.bound {
				t.Fatalf("norm constraint binds: %v, want %v", bound, tc.bound)
			}
			if err := opt.Step(net.layers); err != nil {
				t.Fatal(err)
			}
			for j, l := range net.layers {
				want := kfScaled(-eta, us[j])
				if got := kfDiff(kfThetaOf(l), before[j]); !mat.EqualApprox(got, want, 1e-9) {
					t.Errorf("layer %d: step\n%v\nwant\n%v", j, mat.Formatted(got), mat.Formatted(want))
				}
			}
			if r := opt.Report(); r.Constrained != bound || !scalar.EqualWithinRel(r.Rate, eta, 1e-12) {
				t.Errorf("report %+v, want rate %g, constrained %v", r, eta, bound)
			}
		})
	}
}

// TestNewtonLeastSquares checks that on a linear model with the quadratic
// loss and exact GN vectors (the GN block is then the Hessian, (2/n) X̃ᵀX̃ ⊗ I)
// one undamped Newton step with η = 1 lands on the least-squares solution
// of the normal equations X̃ᵀX̃ Θᵀ = X̃ᵀY, to 1e-9 (without the norm
// constraint, which would shorten the step).
func TestNewtonLeastSquares(t *testing.T) {
	opt := &Newton{Rules: Rules{Undamped: true, NormConstraint: math.Inf(1)}}
	checkLeastSquaresStep(t, opt, 1e-9)
	if opt.Report().DampingRaised != 0 {
		t.Fatal("damping raised on a positive definite block")
	}
}

// TestNewtonDecreasesLoss trains the two-layer tanh regression from a fixed
// seed with exact GN blocks and checks that the risk falls below a tenth of
// its initial value: in 10 updates without the norm constraint, and in 60
// with the defaults, whose constraint (relative to the risk) binds at every
// update here and holds each to a decrease of a few percent of the risk.
func TestNewtonDecreasesLoss(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opt   Newton
		steps int
	}{
		{"defaults", Newton{}, 60},
		{"unconstrained", Newton{Rules: Rules{NormConstraint: math.Inf(1)}}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(21, 3))
			net := newKFNet(rng, []int{4, 8, 3}, []bool{true, false}, 64)
			opt := tc.opt
			r0 := net.forward()
			for step := 0; step < tc.steps; step++ {
				net.fillGNIndexed()
				if err := opt.Step(net.layers); err != nil {
					t.Fatal(err)
				}
			}
			r1 := net.forward()
			if !(r1 < r0/10) {
				t.Errorf("risk %g → %g, want below a tenth", r0, r1)
			}
			t.Logf("risk %g → %g", r0, r1)
		})
	}
}

// TestNewtonRankDeficient checks that a singular block (an input that is
// always zero, fewer examples than parameters) is handled undamped by
// raising the damping, reported, with a finite update; and that without
// retries it is an error that changes nothing.
func TestNewtonRankDeficient(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 8))
	net := newKFNet(rng, []int{3, 2}, []bool{false}, 3)
	for i := 0; i < 3; i++ {
		net.x.Set(i, 1, 0)
	}
	net.fillRecords(nil, "gn", 0)
	w := mat.DenseCopyOf(net.layers[0].W)

	fail := &Newton{Rules: Rules{Undamped: true, Retry: kron.Retry{Tries: 1}}}
	checkFailedStep(t, fail, net.layers, "optim: Newton: ", "layer 0: block not positive definite", false)

	var raised []float64
	// No norm constraint: the step is compared with the dense solve at η = 1.
	opt := &Newton{Rules: Rules{Undamped: true, NormConstraint: math.Inf(1), OnDampingRaised: func(layer int, d float64) { raised = append(raised, d) }}}
	before := kfThetaOf(net.layers[0])
	if err := opt.Step(net.layers); err != nil {
		t.Fatal(err)
	}
	if len(raised) != 1 || !(raised[0] > 0) || opt.Report().DampingRaised != 1 {
		t.Fatalf("raised %v, count %d", raised, opt.Report().DampingRaised)
	}
	if !finiteDense(net.layers[0].W) || mat.Equal(w, net.layers[0].W) {
		t.Fatal("update not finite or not applied")
	}
	// The damping is reported in the units of Damping (relative, here): the
	// step is the dense solve with λ_l = raised·tr(B)/P. The block is
	// singular, so the tolerance is relative to the step's size.
	want := newtonDenseStep(t, net.layers[0], newtonGNIndex(3, 2), raised[0], true, 1)
	got := kfDiff(kfThetaOf(net.layers[0]), before)
	if !mat.EqualApprox(got, want, 1e-6*mat.Norm(want, math.Inf(1))) {
		t.Fatalf("step\n%v\nwant the dense solve with the reported damping\n%v", mat.Formatted(got), mat.Formatted(want))
	}
	t.Logf("damping raised to %g", raised[0])

	// A relative damping lost to rounding (λ = 1e-300 of the mean
	// eigenvalue) on a block singular up to rounding (two equal input
	// columns) is raised by factors of Retry.Growth, and reported in the
	// units of Damping: λ·Growth^k for some k ≥ 1, not its absolute value
	// λ·Growth^k·tr(B)/P (tr(B)/P is not a power of 1e10 here).
	net = newKFNet(rng, []int{3, 2}, []bool{false}, 6)
	for i := 0; i < 6; i++ {
		net.x.Set(i, 1, net.x.At(i, 0))
	}
	net.fillRecords(nil, "gn", 0)
	var blk mat.SymDense
	curvature.DenseBlock(&blk, net.layers[0])
	scale := mat.Trace(&blk) / float64(blk.SymmetricDim())
	if k := math.Log10(scale) / 10; math.Abs(k-math.Round(k)) < 0.01 {
		t.Fatalf("mean eigenvalue %g is a power of 1e10: the check cannot tell the units", scale)
	}
	raised = nil
	rel := &Newton{Rules: Rules{Damping: 1e-300, Retry: kron.Retry{Tries: 40, Growth: 1e10},
		OnDampingRaised: func(layer int, d float64) { raised = append(raised, d) }}}
	if err := rel.Step(net.layers); err != nil {
		t.Fatal(err)
	}
	if len(raised) != 1 {
		t.Fatalf("raised %v", raised)
	}
	if k := math.Log10(raised[0]/1e-300) / 10; !(k >= 0.5) || math.Abs(k-math.Round(k)) > 1e-6 {
		t.Errorf("relative damping 1e-300 raised to %g, want 1e-300·(1e10)^k in the units of Damping", raised[0])
	}
}

// TestNewtonRefusals checks bad settings (an error of Validate, the same
// error returned by Step), oversized layers, missing Back and NaN data
// (errors of Step): each message starts "optim: Newton: " and the
// parameters are left unchanged.
func TestNewtonRefusals(t *testing.T) {
	big := func() []*secondorder.Layer {
		l := &secondorder.Layer{
			W: mat.NewDense(1000, 784, nil), B: mat.NewVecDense(1000, nil),
			GradW: mat.NewDense(1000, 784, nil), GradB: mat.NewVecDense(1000, nil),
		}
		return []*secondorder.Layer{l}
	}
	small := func(spoil func(l *secondorder.Layer)) func() []*secondorder.Layer {
		return func() []*secondorder.Layer {
			rng := rand.New(rand.NewPCG(3, 3))
			l := kfRandomLayer(rng, 2, 2, 5, 5)
			spoil(l)
			return []*secondorder.Layer{l}
		}
	}
	none := func(*secondorder.Layer) {}
	tests := []struct {
		name    string
		opt     Newton
		layers  func() []*secondorder.Layer
		want    string
		missing bool
		setting bool // refused by Validate and by Step with the same error
	}{
		{name: "negative damping", opt: Newton{Rules: Rules{Damping: -1}}, layers: small(none), want: "Damping=-1", setting: true},
		{name: "negative rate", opt: Newton{Rules: Rules{Rate: -2}}, layers: small(none), want: "Rate=-2", setting: true},
		{name: "undamped with damping", opt: Newton{Rules: Rules{Undamped: true, Damping: 0.1}}, layers: small(none), want: "Undamped with Damping=0.1", setting: true},
		{name: "negative MaxParams", opt: Newton{MaxParams: -5}, layers: small(none), want: "MaxParams=-5", setting: true},
		{name: "bad retry", opt: Newton{Rules: Rules{Retry: kron.Retry{Growth: 1}}}, layers: small(none), want: "Retry {Tries:0 Growth:1}", setting: true},
		{name: "too large", opt: Newton{}, layers: big,
			want: "layer 0 (1000×784) has 785000 parameters, more than MaxParams=5000 (its block would take 4.93 TB); use smaller layers or K-FAC"},
		{name: "too large for MaxParams", opt: Newton{MaxParams: 5}, layers: small(none), want: "layer 0 (2×2) has 6 parameters, more than MaxParams=5"},
		{name: "no Back", opt: Newton{}, layers: small(func(l *secondorder.Layer) { l.Back = nil }), want: "missing capability: layer 0 has no Back", missing: true},
		{name: "NaN Back", opt: Newton{}, layers: small(func(l *secondorder.Layer) { l.Back.Set(0, 0, math.NaN()) }), want: "Back holds NaN"},
		{name: "Inf Grad", opt: Newton{}, layers: small(func(l *secondorder.Layer) { l.Grad.Set(0, 0, math.Inf(1)) }), want: "Grad holds NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := tc.opt
			err := checkFailedStep(t, &opt, tc.layers(), "optim: Newton: ", tc.want, tc.missing)
			if verr := opt.Validate(); tc.setting && (verr == nil || err == nil || verr.Error() != err.Error()) {
				t.Errorf("Validate %v and the error of Step %v differ", verr, err)
			} else if !tc.setting && verr != nil {
				t.Errorf("Validate: %v, want nil for valid settings", verr)
			}
		})
	}
}
