package optim

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/internal/testutil"
)

// TestScheduleValues checks the schedules against their closed forms at
// fixed updates t (t = 0 for the first update).
func TestScheduleValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Schedule
		want map[int]float64
	}{
		// factor^(t/steps), factor 0.5 every 10 updates.
		{"ExponentialDecay(0.5, 10)", ExponentialDecay(0.5, 10), map[int]float64{
			0: 1, 5: math.Sqrt(0.5), 10: 0.5, 20: 0.25, 30: 0.125, 15: 0.5 * math.Sqrt(0.5)}},
		{"ExponentialDecay(0.1, 1)", ExponentialDecay(0.1, 1), map[int]float64{0: 1, 1: 0.1, 2: 0.01, 3: 1e-3}},
		{"ExponentialDecay(2, 4)", ExponentialDecay(2, 4), map[int]float64{0: 1, 4: 2, 8: 4, 2: math.Sqrt2}},
		// 1/(1 + t/steps).
		{"InverseTimeDecay(4)", InverseTimeDecay(4), map[int]float64{0: 1, 1: 0.8, 4: 0.5, 12: 0.25, 36: 0.1}},
		{"InverseTimeDecay(1)", InverseTimeDecay(1), map[int]float64{0: 1, 1: 0.5, 3: 0.25, 99: 0.01}},
		// (t+1)/steps over the first steps updates, then 1.
		{"Warmup(4, nil)", Warmup(4, nil), map[int]float64{0: 0.25, 1: 0.5, 2: 0.75, 3: 1, 4: 1, 100: 1}},
		{"Warmup(1, nil)", Warmup(1, nil), map[int]float64{0: 1, 1: 1, 7: 1}},
		// Warmup times the next schedule, evaluated at the same t.
		{"Warmup(2, InverseTimeDecay(2))", Warmup(2, InverseTimeDecay(2)), map[int]float64{
			0: 0.5 * 1, 1: 1 * (1 / 1.5), 2: 0.5, 6: 0.25}},
		{"Warmup(5, ExponentialDecay(0.5, 5))", Warmup(5, ExponentialDecay(0.5, 5)), map[int]float64{
			0: 0.2, 4: math.Pow(0.5, 0.8), 5: 0.5, 10: 0.25}},
	} {
		for step, want := range tc.want {
			if got := tc.s(step); !scalar.EqualWithinRel(got, want, 1e-14) {
				t.Errorf("%s(%d) = %.17g, want %.17g", tc.name, step, got, want)
			}
		}
	}
}

// TestScheduleRefusals: invalid arguments panic with an "optim: " message
// naming the schedule.
func TestScheduleRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"ExponentialDecay", func() { ExponentialDecay(0, 10) }},
		{"ExponentialDecay", func() { ExponentialDecay(-0.5, 10) }},
		{"ExponentialDecay", func() { ExponentialDecay(math.NaN(), 10) }},
		{"ExponentialDecay", func() { ExponentialDecay(0.5, 0) }},
		{"InverseTimeDecay", func() { InverseTimeDecay(0) }},
		{"InverseTimeDecay", func() { InverseTimeDecay(-3) }},
		{"Warmup", func() { Warmup(0, nil) }},
		{"Warmup", func() { Warmup(-1, InverseTimeDecay(2)) }},
	} {
		checkOptimPanics(t, "optim: "+tc.name+": ", "want", tc.f)
	}
}

// TestScheduleDrivesRate: a curvature optimizer's rate at update t is
// Rate·Schedule(t) (Report().Rate, and the step −η_t U of a block Newton
// step with momentum 0), and the Extra parameters, with ExtraRate zero,
// follow the same scheduled rate; a set ExtraRate is not scheduled.
func TestScheduleDrivesRate(t *testing.T) {
	const eta, extra = 0.6, 0.05
	sched := Warmup(2, InverseTimeDecay(3))
	for _, extraRate := range []float64{0, extra} {
		rng := rand.New(rand.NewPCG(61, 62))
		net := newKFNet(rng, []int{3, 2}, []bool{false}, 12)
		l := net.layers[0]
		// No norm constraint: it would bound the scheduled rate.
		opt := &Newton{Rules: Rules{Rate: eta, Schedule: sched, ExtraRate: extraRate, Damping: 0.1, NormConstraint: math.Inf(1)}}
		ref := &Newton{Rules: Rules{Rate: 1, Damping: 0.1, NormConstraint: math.Inf(1)}} // the unit step U, on a copy
		for step := 0; step < 5; step++ {
			idx := net.fillGNIndexed()
			g := testutil.RandVec(rng, 2)
			l.Extra = []secondorder.ExtraParam{{Name: "gamma", Value: mat.NewVecDense(2, []float64{1, -1}), Grad: g}}
			c := &secondorder.Layer{W: mat.DenseCopyOf(l.W), B: mat.VecDenseCopyOf(l.B), Input: l.Input, Grad: l.Grad,
				Back: l.Back, BackScale: l.BackScale, BackExamples: idx, GradW: l.GradW, GradB: l.GradB}
			before := kfThetaOf(l)
			if err := opt.Step(net.layers); err != nil {
				t.Fatal(err)
			}
			if err := ref.Step([]*secondorder.Layer{c}); err != nil {
				t.Fatal(err)
			}
			want := eta * sched(step)
			if r := opt.Report(); !scalar.EqualWithinRel(r.Rate, want, 1e-15) {
				t.Errorf("ExtraRate %g, update %d: rate %g, want η·s(t) = %g", extraRate, step, r.Rate, want)
			}
			u := kfDiff(kfThetaOf(c), before) // −U
			if got := kfDiff(kfThetaOf(l), before); !mat.EqualApprox(got, kfScaled(want, u), 1e-12) {
				t.Errorf("ExtraRate %g, update %d: step is not −η·s(t)·U", extraRate, step)
			}
			er := want
			if extraRate != 0 {
				er = extraRate
			}
			for i, v0 := range []float64{1, -1} {
				if got, w := l.Extra[0].Value.AtVec(i), v0-er*g.AtVec(i); !scalar.EqualWithinAbsOrRel(got, w, 1e-15, 1e-15) {
					t.Errorf("ExtraRate %g, update %d: Extra[%d] = %g, want %g (rate %g)", extraRate, step, i, got, w, er)
				}
			}
		}
	}
}
