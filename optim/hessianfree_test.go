package optim_test

import (
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/floats"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"github.com/secondorder/secondorder/optim/optimtest"
)

// hfStub is a problem for HessianFree with a known model: the GN products
// are c·v, and the loss is the exact quadratic
// f(θ0 + Δ) = f0 + ∇ᵀΔ + ½ κ |Δ|² around the parameters θ0 at the start of
// the test, so that with x = −∇/(c+λ) (CG's one-iteration solution without
// preconditioner) every quantity of the update has a closed form.
type hfStub struct {
	p          *optimtest.Task
	theta0, g  []float64
	f0, c, kap float64
	calls      int
	failAt     int // the call of Loss that fails (0: none)
}

func newHFStub(c, kap float64) *hfStub {
	p := optimtest.Regression(5)
	p.Next()
	s := &hfStub{p: p, theta0: p.Params(), f0: 2, c: c, kap: kap}
	lay := secondorder.NewLayout(p.Records())
	g := make([]float64, lay.Len())
	dirs := make([]secondorder.Direction, len(p.Records()))
	for j, l := range p.Records() {
		dirs[j] = secondorder.Direction{W: l.GradW, B: l.GradB}
	}
	lay.Vec(g, dirs)
	s.g = g
	return s
}

func (s *hfStub) problem() optim.Problem {
	return optim.Problem{
		Loss: func() (float64, error) {
			s.calls++
			if s.calls == s.failAt {
				return 0, errors.New("stub failure")
			}
			d := s.deltaNow()
			return s.f0 + floats.Dot(s.g, d) + 0.5*s.kap*floats.Dot(d, d), nil
		},
		GNVec: func(dst, v []secondorder.Direction) error {
			for j := range v {
				dst[j].W.Scale(s.c, v[j].W)
				dst[j].B.ScaleVec(s.c, v[j].B)
			}
			return nil
		},
	}
}

// deltaNow returns θ − θ0 without touching the parameters.
func (s *hfStub) deltaNow() []float64 {
	recs := s.p.Records()
	lay := secondorder.NewLayout(recs)
	th := make([]float64, lay.Len())
	dirs := make([]secondorder.Direction, len(recs))
	for j, l := range recs {
		dirs[j] = secondorder.Direction{W: l.W, B: l.B}
	}
	lay.Vec(th, dirs)
	floats.Sub(th, s.theta0Vec())
	return th
}

// theta0Vec returns θ0 in the layout of the gradient.
func (s *hfStub) theta0Vec() []float64 {
	now := s.p.Params()
	s.p.SetParams(s.theta0)
	recs := s.p.Records()
	lay := secondorder.NewLayout(recs)
	th := make([]float64, lay.Len())
	dirs := make([]secondorder.Direction, len(recs))
	for j, l := range recs {
		dirs[j] = secondorder.Direction{W: l.W, B: l.B}
	}
	lay.Vec(th, dirs)
	s.p.SetParams(now)
	return th
}

// TestHessianFreeDampingRule checks an update against its closed form and
// Martens' (2010) Levenberg–Marquardt rule: with G = cI and no
// preconditioner CG gives x = −∇/(c+λ), the undamped model change is
// q₀ = ∇ᵀx + ½ c|x|², the loss change ∇ᵀx + ½ κ|x|², and
// ρ = (∇ᵀx + ½κ|x|²)/q₀ (tolerance 1e-10); λ becomes 2/3 λ for ρ > 3/4,
// 3/2 λ for ρ < 1/4, and stays for ρ in between; the parameters move by x.
func TestHessianFreeDampingRule(t *testing.T) {
	const c, lambda = 2.0, 0.5
	for _, tc := range []struct {
		name    string
		kap     float64
		factor  float64
		rhoLow  float64
		rhoHigh float64
	}{
		{"model exact", c, 2.0 / 3, 0.75, math.Inf(1)},
		{"model fair", 3.5, 1, 0.25, 0.75},
		{"model poor", 5.4, 1.5, math.Inf(-1), 0.25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newHFStub(c, tc.kap)
			opt := &optim.HessianFree{Damping: lambda, NoPreconditioner: true, NoLineSearch: true, NoWarmStart: true,
				NormConstraint: math.Inf(1), Problem: s.problem()}
			if err := opt.Step(s.p.Records()); err != nil {
				t.Fatal(err)
			}
			gg := floats.Dot(s.g, s.g)
			gx := -gg / (c + lambda)
			xx := gg / ((c + lambda) * (c + lambda))
			q0 := gx + 0.5*c*xx
			rho := (gx + 0.5*tc.kap*xx) / q0
			r := opt.Report()
			if math.Abs(r.Rho-rho) > 1e-10*math.Abs(rho) || math.Abs(r.ModelDecrease-q0) > 1e-10*math.Abs(q0) {
				t.Errorf("ρ = %g, model change %g; want %g and %g", r.Rho, r.ModelDecrease, rho, q0)
			}
			if !(rho > tc.rhoLow && rho < tc.rhoHigh) {
				t.Fatalf("the case gives ρ = %g, outside its range (%g, %g)", rho, tc.rhoLow, tc.rhoHigh)
			}
			if want := lambda * tc.factor; math.Abs(r.Damping-want) > 1e-15 {
				t.Errorf("λ = %g after ρ = %g, want %g", r.Damping, rho, want)
			}
			d := s.deltaNow()
			want := append([]float64(nil), s.g...)
			floats.Scale(-1/(c+lambda), want)
			if !floats.EqualApprox(d, want, 1e-12) {
				t.Errorf("the parameters did not move by x = −∇/(c+λ)")
			}
		})
	}
}

// TestHessianFreeStepLength: the norm constraint caps the step at
// α² (−∇ᵀx) = C f0 (Report.Constrained, tolerance 1e-12), and the line
// search, on a loss whose curvature κ is far above the model's, returns the
// first α = 0.8^k that meets Armijo's condition f ≤ f0 + 10⁻² α ∇ᵀx.
func TestHessianFreeStepLength(t *testing.T) {
	const c, lambda = 2.0, 0.5
	s := newHFStub(c, c)
	opt := &optim.HessianFree{Damping: lambda, NoPreconditioner: true, NoLineSearch: true, NoWarmStart: true,
		NormConstraint: 1e-4, Problem: s.problem()}
	if err := opt.Step(s.p.Records()); err != nil {
		t.Fatal(err)
	}
	gg := floats.Dot(s.g, s.g)
	gx := -gg / (c + lambda)
	alpha := math.Sqrt(1e-4 * s.f0 / -gx)
	if r := opt.Report(); !r.Constrained || math.Abs(r.Rate-alpha) > 1e-12*alpha {
		t.Errorf("rate %g constrained %t, want %g and true", r.Rate, r.Constrained, alpha)
	}

	const kap = 40.0
	s = newHFStub(c, kap)
	opt = &optim.HessianFree{Damping: lambda, NoPreconditioner: true, NoWarmStart: true,
		NormConstraint: math.Inf(1), Problem: s.problem()}
	if err := opt.Step(s.p.Records()); err != nil {
		t.Fatal(err)
	}
	xx := gg / ((c + lambda) * (c + lambda))
	armijo := func(a float64) bool { return a*gx+0.5*kap*a*a*xx <= 1e-2*a*gx }
	want := 1.0
	for !armijo(want) {
		want *= 0.8
	}
	if r := opt.Report(); math.Abs(r.Rate-want) > 1e-12 || want == 1 {
		t.Errorf("line search rate %g, want %g (< 1)", r.Rate, want)
	}
}

// TestHessianFreeRefusedStep: an error of Problem.Loss in the middle of an
// update (at the backtracking) is returned, and the parameters, the damping
// and the Report are those before the Step, bit for bit; a missing closure
// wraps ErrMissingCapability.
func TestHessianFreeRefusedStep(t *testing.T) {
	s := newHFStub(2, 2)
	opt := &optim.HessianFree{NoWarmStart: true, Problem: s.problem()}
	if err := opt.Step(s.p.Records()); err != nil {
		t.Fatal(err)
	}
	s.p.Next()
	before, rep := s.p.Params(), opt.Report()
	s.calls, s.failAt = 0, 2
	if err := opt.Step(s.p.Records()); err == nil {
		t.Fatal("no error from a failing Loss")
	}
	if n := s.p.ParamsChanged(before); n != 0 {
		t.Errorf("%d parameters changed by a refused step", n)
	}
	if r := opt.Report(); r.Damping != rep.Damping || r.Updates != rep.Updates {
		t.Errorf("Report after a refused step %+v, before %+v", r, rep)
	}
	if err := (&optim.HessianFree{}).Step(s.p.Records()); !errors.Is(err, optim.ErrMissingCapability) {
		t.Errorf("no Problem: %v, want ErrMissingCapability", err)
	}
}

// TestHessianFreeNoAllocs: with closures that do not allocate, a
// Hessian-free update (preconditioner, CG, backtracking, line search)
// allocates nothing after the first.
func TestHessianFreeNoAllocs(t *testing.T) {
	p := optimtest.Classifier(2, nn.ReLU{})
	p.Next()
	calls := 0
	opt := &optim.HessianFree{Problem: optim.Problem{
		// 1 at the start of an update, then 0.9: no fallback (whose
		// message is formatted).
		Loss: func() (float64, error) {
			calls++
			if calls == 1 {
				return 1, nil
			}
			return 0.9, nil
		},
		GNVec: func(dst, v []secondorder.Direction) error {
			for j := range v {
				dst[j].W.Scale(3, v[j].W)
				dst[j].B.ScaleVec(3, v[j].B)
			}
			return nil
		},
	}}
	recs := p.Records()
	step := func() {
		calls = 0
		if err := opt.Step(recs); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		step()
	}
	if a := testing.AllocsPerRun(5, step); a > 0 {
		t.Errorf("%v allocations per Step", a)
	}
	if r := opt.Report(); r.Fallbacks != 0 {
		t.Errorf("%d fallbacks (%s): the test measures the path without", r.Fallbacks, r.LastFallback)
	}
}
