package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// TestPreconditionedExactIsNewton: a Preconditioned optimizer with
// curvature.ExactBlock and the same Rules gives the steps of Newton (whose
// defaults are Preconditioned's), over four updates of the two-layer tanh
// network with exact GN vectors, to 1e-13 per entry, with the same reports.
func TestPreconditionedExactIsNewton(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules Rules
	}{
		{"defaults", Rules{}},
		{"absolute/momentum", Rules{Rate: 0.7, Damping: 0.05, AbsoluteDamping: true, Momentum: 0.5}},
		{"nesterov/constrained", Rules{Rate: 0.5, Damping: 0.2, Momentum: 0.3, Nesterov: true, NormConstraint: 0.01}},
		{"undamped", Rules{Undamped: true, Rate: 0.4}},
	} {
		rules := tc.rules
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(71, 72))
			net := newKFNet(rng, []int{3, 4, 2}, []bool{true, false}, 10)
			twin := newKFNet(rand.New(rand.NewPCG(71, 72)), []int{3, 4, 2}, []bool{true, false}, 10)
			nw := &Newton{Rules: rules}
			p := &Preconditioned{Rules: rules, NewBlock: func(int) curvature.Block { return &curvature.ExactBlock{} }, ReadsBack: true}
			if p.Needs() != nw.Needs() {
				t.Fatalf("Needs %+v, Newton's %+v", p.Needs(), nw.Needs())
			}
			for step := 0; step < 4; step++ {
				net.fillGNIndexed()
				twin.fillGNIndexed()
				if err := nw.Step(net.layers); err != nil {
					t.Fatal(err)
				}
				if err := p.Step(twin.layers); err != nil {
					t.Fatal(err)
				}
				for j := range net.layers {
					if a, b := kfThetaOf(net.layers[j]), kfThetaOf(twin.layers[j]); !mat.EqualApprox(a, b, 1e-13) {
						t.Fatalf("update %d, layer %d: Preconditioned\n%v\nNewton\n%v", step, j, mat.Formatted(b), mat.Formatted(a))
					}
				}
				rn, rp := nw.Report(), p.Report()
				if rn.Updates != rp.Updates || rn.Rate != rp.Rate || rn.Momentum != rp.Momentum || rn.Damping != rp.Damping ||
					rn.Constrained != rp.Constrained || rn.Refreshed != rp.Refreshed || rn.Stats != rp.Stats || rn.DampingRaised != rp.DampingRaised {
					t.Fatalf("update %d: report %+v, Newton's %+v", step, rp, rn)
				}
			}
			if rules.NormConstraint != 0 && !p.Report().Constrained {
				t.Error("the norm constraint never bound: the case does not test it")
			}
		})
	}
}

// TestPreconditionedDiagonal: with curvature.DiagonalBlock the step of every
// layer is, elementwise, with U = ∇θ / (d + λ_l),
//
//	v = μ v_prev − η U,   Δθ = v (classical) or μ v − η U (Nesterov),
//	λ_l = λ·mean(d) (relative) or λ,
//
// with d from the block's Diagonal() (the moving average at that update),
// and η = min(Rate, sqrt(C R/∇ᵀU)) under the norm constraint (the default,
// relative to the records' Risk R; ∇ᵀU summed over the layers), over three
// updates with fresh records, to 1e-12; at the first update d is the
// diagonal of the dense block (curvature.DenseBlock), to 1e-12.
func TestPreconditionedDiagonal(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name     string
		rules    Rules
		decay    float64
		lambda   float64
		absolute bool
		sub      int  // rows of Back (Monte-Carlo, one per example), n when 0
		bound    bool // the norm constraint binds at every update
	}{
		{name: "defaults", lambda: 0.1, bound: true},
		{name: "relative/momentum", rules: Rules{Rate: 0.3, Damping: 0.02, Momentum: 0.5, NormConstraint: inf}, decay: 0.6, lambda: 0.02},
		{name: "relative/nesterov", rules: Rules{Rate: 0.3, Damping: 0.05, Momentum: 0.7, Nesterov: true, NormConstraint: inf}, decay: 0.8, lambda: 0.05},
		{name: "absolute/subbatch", rules: Rules{Rate: 0.5, Damping: 0.01, AbsoluteDamping: true, NormConstraint: inf}, lambda: 0.01, absolute: true, sub: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 12
			rng := rand.New(rand.NewPCG(73, 74))
			net := newKFNet(rng, []int{3, 4, 2}, []bool{true, false}, n)
			var blocks []*curvature.DiagonalBlock
			p := &Preconditioned{Rules: tc.rules, ReadsBack: true, NewBlock: func(j int) curvature.Block {
				if j != len(blocks) {
					t.Fatalf("NewBlock(%d) called out of order", j)
				}
				blocks = append(blocks, &curvature.DiagonalBlock{Decay: tc.decay})
				return blocks[j]
			}}
			c := tc.rules.NormConstraint
			if c == 0 {
				c = DefaultNormConstraint
			}
			vel := make([]*mat.Dense, len(net.layers)) // v, the velocity
			for step := 0; step < 3; step++ {
				m := n
				if tc.sub > 0 {
					m = tc.sub
				}
				net.fillRecords(rng, "sub", m)
				before, grads := net.thetas()
				if err := p.Step(net.layers); err != nil {
					t.Fatal(err)
				}
				if len(blocks) != len(net.layers) {
					t.Fatalf("%d blocks for %d layers", len(blocks), len(net.layers))
				}
				us := make([]*mat.Dense, len(net.layers))
				gu := 0.0 // ∇ᵀU
				for j, l := range net.layers {
					out, in := l.Dims()
					var d mat.VecDense
					blocks[j].Diagonal(&d)
					if step == 0 {
						var dense mat.SymDense
						curvature.DenseBlock(&dense, l)
						for i := 0; i < d.Len(); i++ {
							if math.Abs(d.AtVec(i)-dense.At(i, i)) > 1e-12*(1+math.Abs(dense.At(i, i))) {
								t.Fatalf("layer %d: Diagonal()[%d] = %g, dense block %g", j, i, d.AtVec(i), dense.At(i, i))
							}
						}
					}
					lam := tc.lambda
					if !tc.absolute {
						lam *= mat.Sum(&d) / float64(d.Len())
					}
					us[j] = mat.NewDense(out, in+1, nil)
					for o := 0; o < out; o++ {
						for c := 0; c <= in; c++ {
							u := grads[j].At(o, c) / (d.AtVec(c*out+o) + lam)
							us[j].Set(o, c, u)
							gu += grads[j].At(o, c) * u
						}
					}
				}
				eta := tc.rules.Rate
				if eta == 0 {
					eta = 1
				}
				bound := eta*eta*gu > c*net.layers[0].Risk
				if bound {
					eta = math.Sqrt(c * net.layers[0].Risk / gu)
				}
				if r := p.Report(); bound != tc.bound || r.Constrained != bound || math.Abs(r.Rate-eta) > 1e-12*eta {
					t.Fatalf("update %d: report %+v, want rate %g, constrained %v (want %v)", step, r, eta, bound, tc.bound)
				}
				for j, l := range net.layers {
					out, in := l.Dims()
					want := mat.NewDense(out, in+1, nil)
					if vel[j] == nil {
						vel[j] = mat.NewDense(out, in+1, nil)
					}
					mu := tc.rules.Momentum
					for o := 0; o < out; o++ {
						for c := 0; c <= in; c++ {
							u := us[j].At(o, c)
							v := mu*vel[j].At(o, c) - eta*u
							vel[j].Set(o, c, v)
							if tc.rules.Nesterov {
								v = mu*v - eta*u
							}
							want.Set(o, c, v)
						}
					}
					got := kfDiff(kfThetaOf(l), before[j])
					if !mat.EqualApprox(got, want, 1e-12) {
						t.Fatalf("update %d, layer %d: step\n%v\nwant\n%v", step, j, mat.Formatted(got), mat.Formatted(want))
					}
				}
			}
		})
	}
}

// TestPreconditionedErrors: Preconditioned names itself in its errors (Name,
// or "Preconditioned"), refuses records without Back when ReadsBack, and
// panics without NewBlock.
func TestPreconditionedErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	l := kfRandomLayer(rng, 2, 3, 6, 6)
	diag := func(int) curvature.Block { return &curvature.DiagonalBlock{} }

	p := &Preconditioned{Rules: Rules{Rate: -1}, NewBlock: diag}
	checkRefused(t, p, []*secondorder.Layer{l}, "optim: Preconditioned: ", "Rate=-1")
	p = &Preconditioned{Rules: Rules{Momentum: 2}, NewBlock: diag, Name: "Diag"}
	checkRefused(t, p, []*secondorder.Layer{l}, "optim: Diag: ", "Momentum=2")

	back := l.Back
	l.Back = nil
	p = &Preconditioned{NewBlock: diag, ReadsBack: true, Name: "Diag"}
	checkFailedStep(t, p, []*secondorder.Layer{l}, "optim: Diag: ", "missing capability", true)
	l.Back = back
	if got := p.Needs(); got != (Needs{Back: true}) {
		t.Errorf("Needs %+v", got)
	}
	checkOptimPanics(t, "optim: Preconditioned: ", "NewBlock", func() { (&Preconditioned{}).Step([]*secondorder.Layer{l}) })
}
