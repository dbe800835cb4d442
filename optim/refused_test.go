package optim

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/kron"
)

// refusable is a curvature-based optimizer with checkpoints.
type refusable interface {
	Step([]*secondorder.Layer) error
	Report() Report
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// refusalFixture is a problem of two independent layers (4 → 3 and 3 → 2
// units) whose records are drawn anew at each step from the step's seed,
// with Problem closures that fail on demand.
type refusalFixture struct {
	layers             []*secondorder.Layer
	failLoss, failGNVc bool
}

// refusalBatch is the batch size n (the rows of Input, Grad and Back): more
// than the 15 parameters of the first layer, so that its exact block is
// positive definite without damping.
const refusalBatch = 24

func newRefusalFixture() *refusalFixture {
	rng := rand.New(rand.NewPCG(70, 71))
	f := &refusalFixture{}
	for _, s := range [][2]int{{3, 4}, {2, 3}} {
		f.layers = append(f.layers, &secondorder.Layer{
			W: testutil.RandDense(rng, s[0], s[1], 1),
			B: mat.NewVecDense(s[0], testutil.RandSlice(rng, s[0], 1)),
		})
	}
	return f
}

// Kinds of records drawn by refusalFixture.draw.
const (
	goodRecords     = iota
	singularRecords // the second layer's inputs constant, its Back's first column zero
	tinyRecords     // the first layer's inputs 1e-150, its gradients 1e150
)

// draw fills the records of step with values drawn from the step's seed.
func (f *refusalFixture) draw(step, kind int) {
	rng := rand.New(rand.NewPCG(uint64(step), 72))
	for j, l := range f.layers {
		out, in := l.Dims()
		l.Input = testutil.RandDense(rng, refusalBatch, in, 1)
		l.Grad = testutil.RandDense(rng, refusalBatch, out, 1)
		l.Back = testutil.RandDense(rng, refusalBatch, out, 1)
		l.GradW = testutil.RandDense(rng, out, in, 1)
		l.GradB = mat.NewVecDense(out, testutil.RandSlice(rng, out, 1))
		switch {
		case kind == singularRecords && j == 1:
			l.Input.Apply(func(_, _ int, _ float64) float64 { return 1 }, l.Input)
			for i := 0; i < refusalBatch; i++ {
				l.Back.Set(i, 0, 0)
			}
		case kind == tinyRecords && j == 0:
			l.Input.Scale(1e-150, l.Input)
			l.GradW.Scale(1e150, l.GradW)
			l.GradB.ScaleVec(1e150, l.GradB)
		}
	}
	setQuadraticRisk(f.layers...)
}

// problem returns closures over f: Loss is ½‖θ‖², GNVec is 2I.
func (f *refusalFixture) problem() Problem {
	return Problem{
		Loss: func() (float64, error) {
			if f.failLoss {
				return 0, errors.New("loss unavailable")
			}
			s := 0.0
			for _, l := range f.layers {
				for _, v := range flatParams(l) {
					s += v * v
				}
			}
			return s / 2, nil
		},
		GNVec: func(dst, v []secondorder.Direction) error {
			if f.failGNVc {
				return errors.New("GNVec unavailable")
			}
			for j := range v {
				dst[j].W.Scale(2, v[j].W)
				dst[j].B.ScaleVec(2, v[j].B)
			}
			return nil
		},
	}
}

// params returns the parameters of every layer.
func (f *refusalFixture) params() [][]float64 {
	var p [][]float64
	for _, l := range f.layers {
		p = append(p, flatParams(l))
	}
	return p
}

// copyParams sets the parameters of f to those of g.
func (f *refusalFixture) copyParams(g *refusalFixture) {
	for j, l := range f.layers {
		l.W.Copy(g.layers[j].W)
		l.B.CopyVec(g.layers[j].B)
	}
}

// sameParamBits reports whether p and q hold the same bits.
func sameParamBits(p, q [][]float64) bool {
	if len(p) != len(q) {
		return false
	}
	for j := range p {
		if len(p[j]) != len(q[j]) {
			return false
		}
		for i := range p[j] {
			if math.Float64bits(p[j][i]) != math.Float64bits(q[j][i]) {
				return false
			}
		}
	}
	return true
}

// refusedOptimizers are the curvature-based optimizers, made with the
// rules r: K-FAC with a decay so small that the factors are those of the
// last batch (so that a singular batch makes them singular), ACP, Newton,
// and Preconditioned with a diagonal block on the first layer and an exact
// one on the second.
var refusedOptimizers = []struct {
	name string
	make func(r Rules) refusable
}{
	{"KFAC", func(r Rules) refusable { return &KFAC{Rules: r, Decay: 1e-300} }},
	{"ACP", func(r Rules) refusable { return &ACP{Rules: r} }},
	{"Newton", func(r Rules) refusable { return &Newton{Rules: r} }},
	{"Preconditioned-Diagonal", func(r Rules) refusable {
		return &Preconditioned{Rules: r, ReadsBack: true, NewBlock: func(j int) curvature.Block {
			if j == 0 {
				return &curvature.DiagonalBlock{Decay: 1e-300}
			}
			return &curvature.ExactBlock{}
		}}
	}},
}

// refusalCase is a way of refusing a step after the blocks' statistics
// were updated: the rules, the records of the refused step, which closure
// fails, and a fragment of the error.
type refusalCase struct {
	name               string
	rules              Rules
	kind               int
	failLoss, failGNVc bool
	want               string
	lm                 bool // needs an LM update (not the first)
}

var refusalCases = []refusalCase{
	{name: "refresh fails", rules: Rules{Undamped: true, Retry: kron.Retry{Tries: 1}}, kind: singularRecords, want: "layer 1: block not positive definite"},
	{name: "Loss before the update", rules: Rules{AdaptDamping: true}, failLoss: true, want: "Problem.Loss before the update", lm: true},
	{name: "GNVec of AutoRate", rules: Rules{AutoRate: true}, failGNVc: true, want: "Problem.GNVec"},
	{name: "GNVec of the LM model", rules: Rules{AdaptDamping: true}, failGNVc: true, want: "Problem.GNVec", lm: true},
	{name: "direction not finite", rules: Rules{Undamped: true}, kind: tinyRecords, want: "layer 0: the preconditioned direction is not finite"},
}

// TestRefusedStepLeavesStateUnchanged proves that a step refused after the
// curvature blocks' statistics were updated (at a step where the
// statistics are due and the blocks refreshed) — by a refresh that fails
// on the second layer after the first was refactorized, an error of
// Problem.Loss before an LM update, of Problem.GNVec for AutoRate or for
// the LM model (after δ was formed), or a direction that is not finite —
// leaves the parameters and the optimizer's state unchanged, bit for bit:
// MarshalBinary before and after are identical. Then a good step on the
// refused optimizer gives the same parameters and checkpoint, bit for bit,
// as on a twin that never saw the refused step and on one restored from the
// checkpoint of before. Refused at the first step (nothing started) and at
// step 4 (after good steps with momentum; an LM update).
func TestRefusedStepLeavesStateUnchanged(t *testing.T) {
	for _, o := range refusedOptimizers {
		for _, tc := range refusalCases {
			for _, at := range []int{0, 4} {
				if tc.lm && at == 0 {
					continue
				}
				t.Run(fmt.Sprintf("%s/%s/step %d", o.name, tc.name, at), func(t *testing.T) {
					checkRefusedStep(t, o.make, tc, at)
				})
			}
		}
	}
}

func checkRefusedStep(t *testing.T, mk func(Rules) refusable, tc refusalCase, at int) {
	rules := func(f *refusalFixture) Rules {
		r := tc.rules
		r.InversePeriod = 2 // statistics and refresh at steps 0, 2, 4 for every method
		if !r.AutoRate {
			r.Momentum = 0.5
		}
		r.Problem = f.problem()
		return r
	}
	fa, fb := newRefusalFixture(), newRefusalFixture()
	a, b := mk(rules(fa)), mk(rules(fb)) // b never sees the refused step
	for step := 0; step < at; step++ {
		for _, p := range []struct {
			f   *refusalFixture
			opt refusable
		}{{fa, a}, {fb, b}} {
			p.f.draw(step, goodRecords)
			if err := p.opt.Step(p.f.layers); err != nil {
				t.Fatalf("good step %d: %v", step, err)
			}
		}
	}
	before, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	params := fa.params()

	fa.draw(at, tc.kind)
	fa.failLoss, fa.failGNVc = tc.failLoss, tc.failGNVc
	err = a.Step(fa.layers)
	fa.failLoss, fa.failGNVc = false, false
	if err == nil || !strings.Contains(err.Error(), tc.want) {
		t.Fatalf("refused step: error %v, want one containing %q", err, tc.want)
	}
	if !sameParamBits(params, fa.params()) {
		t.Fatal("the refused step changed the parameters")
	}
	after, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatalf("the refused step (%v) changed the optimizer's state: the checkpoints before and after differ", err)
	}

	// A twin restored from the checkpoint of before, on parameters copied.
	fc := newRefusalFixture()
	fc.copyParams(fa)
	c := mk(rules(fc))
	if err := c.UnmarshalBinary(before); err != nil {
		t.Fatal(err)
	}
	for step := at; step < at+3; step++ {
		for _, p := range []struct {
			f   *refusalFixture
			opt refusable
		}{{fa, a}, {fb, b}, {fc, c}} {
			p.f.draw(step, goodRecords)
			if err := p.opt.Step(p.f.layers); err != nil {
				t.Fatalf("good step %d: %v", step, err)
			}
		}
		if !sameParamBits(fa.params(), fb.params()) || !sameParamBits(fa.params(), fc.params()) {
			t.Fatalf("step %d: the parameters differ from those of the twins", step)
		}
		ma, _ := a.MarshalBinary()
		mb, _ := b.MarshalBinary()
		mc, _ := c.MarshalBinary()
		if !bytes.Equal(ma, mb) || !bytes.Equal(ma, mc) {
			t.Fatalf("step %d: the checkpoint differs from those of the twins", step)
		}
	}
}

// TestRefusedStepUnstagedBlock: with a block that does not implement
// curvature.Staged (a user's block in Preconditioned) a refused step keeps
// the block's statistics, as documented, but restores the engine's own
// state: the report and the update count, and the next step works.
func TestRefusedStepUnstagedBlock(t *testing.T) {
	f := newRefusalFixture()
	blocks := map[int]*SavedBlock{}
	p := &Preconditioned{Rules: Rules{AdaptDamping: true, Momentum: 0.5, Problem: f.problem()}, NewBlock: func(j int) curvature.Block {
		blocks[j] = &SavedBlock{}
		return blocks[j]
	}}
	if _, ok := curvature.Block(&SavedBlock{}).(curvature.Staged); ok {
		t.Fatal("SavedBlock implements curvature.Staged")
	}
	for step := 0; step < 4; step++ {
		f.draw(step, goodRecords)
		if err := p.Step(f.layers); err != nil {
			t.Fatal(err)
		}
	}
	report, n := fmt.Sprintf("%+v", p.Report()), blocks[0].n
	params := f.params()
	f.draw(4, goodRecords)
	f.failLoss = true
	if err := p.Step(f.layers); err == nil || !strings.Contains(err.Error(), "Problem.Loss before the update") {
		t.Fatalf("error %v, want the Loss's", err)
	}
	f.failLoss = false
	if !sameParamBits(params, f.params()) {
		t.Fatal("the refused step changed the parameters")
	}
	if got := fmt.Sprintf("%+v", p.Report()); got != report {
		t.Errorf("report %s after the refused step, want %s", got, report)
	}
	if blocks[0].n != n+1 {
		t.Errorf("the block saw %d Updates, want %d (the refused step's kept)", blocks[0].n, n+1)
	}
	if err := p.Step(f.layers); err != nil || p.Report().Updates != 5 {
		t.Fatalf("next step: %v, %d updates", err, p.Report().Updates)
	}
}
