package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/kron"
)

// newtonDenseStep is the reference block Newton update of one layer,
// vec(ΔΘ) = −η (B + λI)⁻¹ ∇θ, with B from curvature.Block and the system
// solved by LU (mat.Dense.SolveVec), returned as ΔΘ (n_out × (n_in+1)).
// relative scales λ by tr(B)/P.
func newtonDenseStep(t *testing.T, l *secondorder.Layer, idx []int, lambda float64, relative bool, eta float64) *mat.Dense {
	t.Helper()
	var b mat.SymDense
	curvature.Block(&b, l, idx)
	p := b.SymmetricDim()
	if relative {
		lambda *= mat.Trace(&b) / float64(p)
	}
	bd := mat.NewDense(p, p, nil)
	bd.Copy(&b)
	for i := 0; i < p; i++ {
		bd.Set(i, i, bd.At(i, i)+lambda)
	}
	var g, d mat.VecDense
	kron.Vec(&g, kfGradThetaOf(l))
	if err := d.SolveVec(bd, &g); err != nil {
		t.Fatal(err)
	}
	d.ScaleVec(-eta, &d)
	out, in := l.Dims()
	var dt mat.Dense
	kron.Unvec(&dt, &d, out, in+1)
	return &dt
}

// TestNewtonStepMatchesDense checks one block Newton update of every layer
// against the dense solve with the block of curvature.Block, for the
// example layouts of Back: exact GN (k consecutive rows per example,
// Examples nil), Monte-Carlo (one row per example), a sub-batch, and two
// samples per example laid out sample by sample (Examples given).
// Tolerance 1e-9 per entry.
func TestNewtonStepMatchesDense(t *testing.T) {
	tests := []struct {
		name   string
		sizes  []int
		tanh   []bool
		back   string
		opt    Newton
		lambda float64
		rel    bool
	}{
		{name: "linear/gn/relative", sizes: []int{3, 2}, tanh: []bool{false}, back: "gn", opt: Newton{}, lambda: DefaultNewtonDamping, rel: true},
		{name: "tanh2/gn/absolute", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "gn",
			opt: Newton{Damping: 0.05, AbsoluteDamping: true, Rate: 0.7}, lambda: 0.05},
		{name: "tanh2/mc/relative", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "mc",
			opt: Newton{Damping: 0.1}, lambda: 0.1, rel: true},
		{name: "tanh2/subbatch", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "sub",
			opt: Newton{Damping: 0.2, AbsoluteDamping: true}, lambda: 0.2},
		{name: "tanh2/samples-major", sizes: []int{3, 4, 2}, tanh: []bool{true, false}, back: "samples",
			opt: Newton{Damping: 0.02}, lambda: 0.02, rel: true},
	}
	const n = 10
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(17, 4))
			net := newKFNet(rng, tc.sizes, tc.tanh, n)
			net.forward()
			net.backward()
			opt := tc.opt
			var idx []int
			switch tc.back {
			case "gn":
				idx = net.backGN()
			case "mc":
				net.backMC(rng, n)
			case "sub":
				net.backMC(rng, 4)
				idx = []int{0, 1, 2, 3}
			case "samples":
				// Two Monte-Carlo samples per example, row s·n + i for
				// sample s of example i (the layout of curvature.Backprop).
				k := tc.sizes[len(tc.sizes)-1]
				v := kfRandDense(rng, 2*n, k, -math.Sqrt2)
				idx = make([]int, 2*n)
				for r := range idx {
					idx[r] = r % n
				}
				net.propagate(v, idx, func(j int, b *mat.Dense) {
					net.layers[j].Back = b
					net.layers[j].BackScale = 1.0 / (2 * n)
				})
				opt.Examples = idx
			}
			var want, before []*mat.Dense
			for _, l := range net.layers {
				eta := opt.Rate
				if eta == 0 {
					eta = 1
				}
				want = append(want, newtonDenseStep(t, l, idx, tc.lambda, tc.rel, eta))
				before = append(before, kfThetaOf(l))
			}
			if err := opt.Step(net.layers); err != nil {
				t.Fatal(err)
			}
			for j, l := range net.layers {
				if got := kfDiff(kfThetaOf(l), before[j]); !mat.EqualApprox(got, want[j], 1e-9) {
					t.Errorf("layer %d: step\n%v\nwant\n%v", j, mat.Formatted(got), mat.Formatted(want[j]))
				}
			}
		})
	}
}

// TestNewtonLeastSquares checks that on a linear model with the quadratic
// loss and exact GN vectors (the GN block is then the Hessian, (2/n) X̃ᵀX̃ ⊗ I)
// one undamped Newton step with η = 1 lands on the least-squares solution
// of the normal equations X̃ᵀX̃ Θᵀ = X̃ᵀY, to 1e-9.
func TestNewtonLeastSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 5))
	const n, in, out = 30, 4, 3
	net := newKFNet(rng, []int{in, out}, []bool{false}, n)
	net.forward()
	net.backward()
	net.backGN()
	opt := &Newton{Undamped: true}
	if err := opt.Step(net.layers); err != nil {
		t.Fatal(err)
	}
	xt := mat.NewDense(n, in+1, nil)
	xt.Slice(0, n, 0, in).(*mat.Dense).Copy(net.x)
	for i := 0; i < n; i++ {
		xt.Set(i, in, 1)
	}
	var a, b, sol mat.Dense
	a.Mul(xt.T(), xt)
	b.Mul(xt.T(), net.y)
	if err := sol.Solve(&a, &b); err != nil {
		t.Fatal(err)
	}
	got := kfThetaOf(net.layers[0])
	if !mat.EqualApprox(got, sol.T(), 1e-9) {
		t.Fatalf("Θ after one step\n%v\nwant\n%v", mat.Formatted(got), mat.Formatted(sol.T()))
	}
	if opt.DampingRaised() != 0 {
		t.Fatal("damping raised on a positive definite block")
	}
}

// TestNewtonDecreasesLoss trains the two-layer tanh regression from a fixed
// seed with exact GN blocks and checks that the risk falls below a tenth of
// its initial value in 10 updates.
func TestNewtonDecreasesLoss(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 3))
	net := newKFNet(rng, []int{4, 8, 3}, []bool{true, false}, 64)
	opt := &Newton{}
	r0 := net.forward()
	for step := 0; step < 10; step++ {
		net.forward()
		net.backward()
		opt.Examples = net.backGN()
		if err := opt.Step(net.layers); err != nil {
			t.Fatal(err)
		}
	}
	r1 := net.forward()
	if !(r1 < r0/10) {
		t.Errorf("risk %g → %g, want below a tenth", r0, r1)
	}
	t.Logf("risk %g → %g", r0, r1)
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
	net.forward()
	net.backward()
	net.backGN()
	w := mat.DenseCopyOf(net.layers[0].W)

	fail := &Newton{Undamped: true, Retry: kron.Retry{Tries: 1}}
	err := fail.Step(net.layers)
	if err == nil || !strings.Contains(err.Error(), "optim: Newton: layer 0: block not positive definite") {
		t.Fatalf("error %v, want a factorization failure", err)
	}
	if !mat.Equal(w, net.layers[0].W) {
		t.Fatal("parameters changed")
	}

	var raised []float64
	opt := &Newton{Undamped: true, OnDampingRaised: func(layer int, d float64) { raised = append(raised, d) }}
	if err := opt.Step(net.layers); err != nil {
		t.Fatal(err)
	}
	if len(raised) != 1 || !(raised[0] > 0) || opt.DampingRaised() != 1 {
		t.Fatalf("raised %v, count %d", raised, opt.DampingRaised())
	}
	if !kfFiniteDense(net.layers[0].W) || mat.Equal(w, net.layers[0].W) {
		t.Fatal("update not finite or not applied")
	}
	t.Logf("damping raised to %g", raised[0])
}

// TestNewtonRefusals checks bad settings (an error of Validate, a panic of
// Step with the same message), oversized layers, missing Back and NaN data
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
		setting bool // refused by Validate and a panic of Step
	}{
		{name: "negative damping", opt: Newton{Damping: -1}, layers: small(none), want: "Damping=-1", setting: true},
		{name: "negative rate", opt: Newton{Rate: -2}, layers: small(none), want: "Rate=-2", setting: true},
		{name: "undamped with damping", opt: Newton{Undamped: true, Damping: 0.1}, layers: small(none), want: "Undamped with Damping=0.1", setting: true},
		{name: "negative MaxParams", opt: Newton{MaxParams: -5}, layers: small(none), want: "MaxParams=-5", setting: true},
		{name: "bad retry", opt: Newton{Retry: kron.Retry{Growth: 1}}, layers: small(none), want: "Retry.Growth=1", setting: true},
		{name: "too large", opt: Newton{}, layers: big,
			want: "layer 0 (1000×784) has 785000 parameters, more than MaxParams=5000 (its block would take 4.93 TB); use smaller layers or K-FAC"},
		{name: "too large for MaxParams", opt: Newton{MaxParams: 5}, layers: small(none), want: "layer 0 (2×2) has 6 parameters, more than MaxParams=5"},
		{name: "no Back", opt: Newton{}, layers: small(func(l *secondorder.Layer) { l.Back = nil }), want: "missing capability: layer 0 has no Back", missing: true},
		{name: "NaN Back", opt: Newton{}, layers: small(func(l *secondorder.Layer) { l.Back.Set(0, 0, math.NaN()) }), want: "Back holds NaN"},
		{name: "Inf Grad", opt: Newton{}, layers: small(func(l *secondorder.Layer) { l.Grad.Set(0, 0, math.Inf(1)) }), want: "Grad holds NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			layers := tc.layers()
			w := mat.DenseCopyOf(layers[0].W)
			opt := tc.opt
			var err error
			if tc.setting {
				if verr := opt.Validate(); verr == nil || verr.Error() != kfPanicMessage(func() { opt.Step(layers) }) {
					t.Errorf("Validate %v and the panic of Step differ", verr)
				}
				err = opt.Validate()
			} else {
				err = opt.Step(layers)
			}
			if err == nil || !strings.HasPrefix(err.Error(), "optim: Newton: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if errors.Is(err, ErrMissingCapability) != tc.missing {
				t.Errorf("errors.Is(err, ErrMissingCapability) = %v", !tc.missing)
			}
			if !mat.Equal(w, layers[0].W) {
				t.Error("parameters changed")
			}
		})
	}
}
