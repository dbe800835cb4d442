package optim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/curvature"
)

// Tests of the norm constraint relative to the risk, η² ∇ᵀU ≤ C R with R the
// records' Risk, and of its absolute variant η² ∇ᵀU ≤ C.

// ncOptimizer is a curvature-based optimizer under test, made fresh by a
// constructor for the given Rules.
type ncOptimizer struct {
	name string
	make func(r Rules) stepReporter
}

// ncOptimizers returns the optimizers whose default NormConstraint is
// DefaultNormConstraint, relative to the risk.
func ncOptimizers() []ncOptimizer {
	return []ncOptimizer{
		{"KFAC", func(r Rules) stepReporter { return &KFAC{Rules: r} }},
		{"ACP", func(r Rules) stepReporter { return &ACP{Rules: r} }},
		{"Newton", func(r Rules) stepReporter { return &Newton{Rules: r} }},
		{"Preconditioned", func(r Rules) stepReporter {
			return &Preconditioned{Rules: r, ReadsBack: true, NewBlock: func(int) curvature.Block { return &curvature.DiagonalBlock{} }}
		}},
	}
}

// ncNet returns the two-layer tanh network of the tests with its records
// filled (exact Gauss–Newton Back, Risk the true risk), from a fixed seed:
// two calls give identical networks.
func ncNet() *kfNet {
	net := newKFNet(rand.New(rand.NewPCG(81, 82)), []int{3, 4, 2}, []bool{true, false}, 10)
	net.fillRecords(nil, "gn", 0)
	return net
}

// ncSetRisk sets the Risk of every record of net.
func ncSetRisk(net *kfNet, r float64) {
	for _, l := range net.layers {
		l.Risk = r
	}
}

// ncParams returns the parameters of every layer of net in one slice.
func ncParams(net *kfNet) []float64 {
	var p []float64
	for _, l := range net.layers {
		p = append(p, flatParams(l)...)
	}
	return p
}

// ncSameReport requires two reports to be equal, NaN equal to NaN.
func ncSameReport(t *testing.T, got, want Report, msg string) {
	t.Helper()
	nanEq := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	g, w := got, want
	if !nanEq(g.Rho, w.Rho) || !nanEq(g.ModelDecrease, w.ModelDecrease) {
		t.Errorf("%s: report %+v, want %+v", msg, got, want)
	}
	g.Rho, g.ModelDecrease, w.Rho, w.ModelDecrease = 0, 0, 0, 0
	if g != w {
		t.Errorf("%s: report %+v, want %+v", msg, got, want)
	}
}

// TestNormConstraintMissingRisk: with the norm constraint relative to the
// risk (the default, or a set finite NormConstraint), records without Risk
// make Step return an error wrapping ErrMissingCapability that names the
// records' Risk, before anything changes: the parameters are unchanged, no
// update is counted, the report is a fresh optimizer's, and once Risk is set
// two more steps give exactly the parameters and reports of a fresh
// optimizer on an identical network. Without the constraint (+Inf) or with
// AbsoluteNormConstraint, Risk is not needed.
func TestNormConstraintMissingRisk(t *testing.T) {
	for _, o := range ncOptimizers() {
		for _, rc := range []struct {
			name  string
			rules Rules
		}{
			{"default", Rules{}},
			{"C=0.01", Rules{NormConstraint: 0.01, Rate: 0.5}},
		} {
			t.Run(o.name+"/"+rc.name, func(t *testing.T) {
				net, twin := ncNet(), ncNet()
				risk := net.layers[0].Risk
				if !(risk > 0) {
					t.Fatalf("network risk %g", risk)
				}
				ncSetRisk(net, 0)
				opt, fresh := o.make(rc.rules), o.make(rc.rules)
				err := checkFailedStep(t, opt, net.layers, "optim: "+o.name+": ", "the records' Risk", true)
				if !errors.Is(err, ErrMissingCapability) {
					t.Fatalf("error %v does not wrap ErrMissingCapability", err)
				}
				ncSameReport(t, opt.Report(), fresh.Report(), "after the refused step")
				if !strings.Contains(err.Error(), "AbsoluteNormConstraint") {
					t.Errorf("error %q does not name the way out (AbsoluteNormConstraint)", err)
				}

				ncSetRisk(net, risk)
				for step := 0; step < 2; step++ {
					if step > 0 {
						net.fillRecords(nil, "gn", 0)
						twin.fillRecords(nil, "gn", 0)
					}
					if err := opt.Step(net.layers); err != nil {
						t.Fatalf("step %d after setting Risk: %v", step, err)
					}
					if err := fresh.Step(twin.layers); err != nil {
						t.Fatal(err)
					}
					if got, want := ncParams(net), ncParams(twin); !equalFloats(got, want) {
						t.Fatalf("step %d after the refused one: parameters\n%v\nwant those of a fresh optimizer\n%v", step, got, want)
					}
					ncSameReport(t, opt.Report(), fresh.Report(), "after setting Risk")
				}
				if !fresh.Report().Constrained {
					t.Error("the norm constraint never bound: the comparison does not involve the Risk")
				}
			})
		}
		for _, rc := range []struct {
			name  string
			rules Rules
		}{
			{"off", Rules{NormConstraint: math.Inf(1)}},
			{"absolute", Rules{AbsoluteNormConstraint: true}},
		} {
			t.Run(o.name+"/no-risk-needed/"+rc.name, func(t *testing.T) {
				net := ncNet()
				ncSetRisk(net, 0)
				p := ncParams(net)
				opt := o.make(rc.rules)
				if err := opt.Step(net.layers); err != nil {
					t.Fatal(err)
				}
				if equalFloats(p, ncParams(net)) {
					t.Error("no update")
				}
			})
		}
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNormConstraintBadRisk: a negative, NaN or infinite Risk is an error
// (not a missing capability) naming the Risk, with the parameters unchanged
// and no update counted, for the default (relative) constraint.
func TestNormConstraintBadRisk(t *testing.T) {
	for _, o := range ncOptimizers() {
		for _, r := range []float64{-1, -1e-300, math.Inf(-1), math.NaN(), math.Inf(1)} {
			t.Run(fmt.Sprintf("%s/Risk=%g", o.name, r), func(t *testing.T) {
				net := ncNet()
				ncSetRisk(net, r)
				checkFailedStep(t, o.make(Rules{}), net.layers, "optim: "+o.name+": ", "Risk is", false)
			})
		}
	}
}

// ncScaled fills the records of net and multiplies the loss by k: Grad,
// GradW and GradB by k, Back by √k, Risk by k.
func ncScaled(net *kfNet, k float64) {
	net.fillRecords(nil, "gn", 0)
	for _, l := range net.layers {
		l.Grad.Scale(k, l.Grad)
		l.GradW.Scale(k, l.GradW)
		l.GradB.ScaleVec(k, l.GradB)
		l.Back.Scale(math.Sqrt(k), l.Back)
		l.Risk *= k
	}
}

// ncMaxDiff returns max |a − b| / max |b|.
func ncMaxDiff(a, b []float64) float64 {
	d, s := 0.0, 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
		s = math.Max(s, math.Abs(b[i]))
	}
	return d / s
}

// TestNormConstraintScaleFree: multiplying the loss by k (ncScaled) leaves
// the updates of the default K-FAC and Newton unchanged, to 1e-12 relative
// to the update, over two updates at which the constraint binds, for k in
// {1e-3, 1, 1e3}: relative damping, curvature and ∇ᵀU scale by k and so
// does the bound C R. With AbsoluteNormConstraint the bound C does not
// scale, and the update for k = 1e3 differs from that for k = 1 (by more
// than 10 %).
func TestNormConstraintScaleFree(t *testing.T) {
	for _, tc := range []struct {
		name      string
		make      func() stepReporter
		scaleFree bool
	}{
		{"KFAC/default", func() stepReporter { return &KFAC{} }, true},
		{"Newton/default", func() stepReporter { return &Newton{} }, true},
		{"KFAC/absolute", func() stepReporter { return &KFAC{Rules: Rules{AbsoluteNormConstraint: true}} }, false},
		{"Newton/absolute", func() stepReporter { return &Newton{Rules: Rules{AbsoluteNormConstraint: true}} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// updates[k][s] is the update of step s for the scale k.
			updates := map[float64][][]float64{}
			for _, k := range []float64{1e-3, 1, 1e3} {
				net := ncNet()
				opt := tc.make()
				for step := 0; step < 2; step++ {
					ncScaled(net, k)
					p := ncParams(net)
					if err := opt.Step(net.layers); err != nil {
						t.Fatal(err)
					}
					if !opt.Report().Constrained {
						t.Fatalf("k = %g, step %d: the norm constraint does not bind (report %+v): the case does not test it", k, step, opt.Report())
					}
					u := ncParams(net)
					for i := range u {
						u[i] -= p[i]
					}
					updates[k] = append(updates[k], u)
				}
			}
			for _, k := range []float64{1e-3, 1e3} {
				for step := range updates[1] {
					d := ncMaxDiff(updates[k][step], updates[1][step])
					switch {
					case tc.scaleFree && !(d <= 1e-12):
						t.Errorf("k = %g, step %d: update differs from k = 1 by %.3g relative", k, step, d)
					case !tc.scaleFree && k == 1e3 && !(d > 0.1):
						t.Errorf("k = %g, step %d: update differs from k = 1 by only %.3g relative: the absolute constraint looks scale-free", k, step, d)
					}
				}
			}
		})
	}
}

// TestNormConstraintAbsolute: with AbsoluteNormConstraint, records without
// Risk are accepted, and a binding constraint gives η² ∇ᵀU = C to 1e-12
// relative, with η the reported Rate and ∇ᵀU = −∇ᵀΔθ/η from the update
// (no momentum: Δθ = −ηU); for K-FAC ∇ᵀU is also computed from the dense
// damped Kronecker solve (kfDenseStep), and the rate is sqrt(C/∇ᵀU) to
// 1e-12. A loose C does not bind: the rate is Rate and η² ∇ᵀU < C.
func TestNormConstraintAbsolute(t *testing.T) {
	for _, o := range ncOptimizers() {
		for _, tc := range []struct {
			c     float64
			bound bool
		}{
			{1e-4, true},
			{1e-2, true},
			{1e6, false},
		} {
			t.Run(fmt.Sprintf("%s/C=%g", o.name, tc.c), func(t *testing.T) {
				net := ncNet()
				ncSetRisk(net, 0) // not needed
				var guDense float64
				if o.name == "KFAC" {
					for _, l := range net.layers {
						a, g := kfInputFactor(l.Input, net.n), kfOutputFactor(l)
						u := kfDenseStep(t, a, g, DefaultKFACDamping*kfMeanEig(a, g), -1, kfGradThetaOf(l))
						guDense += mat.Sum(kfMulElem(u, kfGradThetaOf(l)))
					}
				}
				_, grads := net.thetas()
				before, _ := net.thetas()
				const rate = 0.9
				opt := o.make(Rules{Rate: rate, NormConstraint: tc.c, AbsoluteNormConstraint: true})
				if err := opt.Step(net.layers); err != nil {
					t.Fatal(err)
				}
				r := opt.Report()
				if r.Constrained != tc.bound {
					t.Fatalf("C = %g: report %+v, want constrained %v", tc.c, r, tc.bound)
				}
				gd := 0.0 // ∇ᵀΔθ
				for j, l := range net.layers {
					gd += mat.Sum(kfMulElem(kfDiff(kfThetaOf(l), before[j]), grads[j]))
				}
				eta := r.Rate
				gu := -gd / eta
				if !(gu > 0) {
					t.Fatalf("∇ᵀU = %g", gu)
				}
				got := eta * eta * gu
				if !tc.bound {
					if eta != rate || !(got < tc.c) {
						t.Errorf("C = %g: rate %g, η²∇ᵀU = %g, want rate %g and η²∇ᵀU < C", tc.c, eta, got, rate)
					}
					return
				}
				if math.Abs(got-tc.c) > 1e-12*tc.c {
					t.Errorf("C = %g: η²∇ᵀU = %.17g, want C", tc.c, got)
				}
				if !(eta < rate) {
					t.Errorf("C = %g: rate %g not lowered below %g", tc.c, eta, rate)
				}
				if o.name == "KFAC" {
					if want := math.Sqrt(tc.c / guDense); math.Abs(eta-want) > 1e-12*want {
						t.Errorf("C = %g: rate %.17g, want sqrt(C/∇ᵀU) = %.17g from the dense solve", tc.c, eta, want)
					}
				}
			})
		}
	}
}
