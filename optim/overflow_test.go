package optim

import (
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// TestOverflowingSquaresRefused proves that a record whose squared entries
// overflow is refused before anything changes, where it would otherwise
// leave a second-moment statistic at +Inf for good (Adam's and RMSProp's v,
// K-FAC's G and Ā), and that a clean record afterwards updates normally:
// Adam and RMSProp on a gradient of 1e200, K-FAC on a Back and on an Input of
// 1e200.
func TestOverflowingSquaresRefused(t *testing.T) {
	huge := func(m *mat.Dense) { m.Set(0, 0, 1e200) }
	for _, tc := range []struct {
		name  string
		opt   func() stepReporter
		spoil func(l *secondorder.Layer)
		want  string
	}{
		{"Adam", func() stepReporter { return &Adam{} }, func(l *secondorder.Layer) { huge(l.GradW) }, "GradW has an entry whose square overflows"},
		{"RMSProp", func() stepReporter { return &RMSProp{} }, func(l *secondorder.Layer) { l.GradB.SetVec(0, -1e200) }, "GradB has an entry whose square overflows"},
		{"KFAC/Back", func() stepReporter { return &KFAC{} }, func(l *secondorder.Layer) { huge(l.Back) }, "Input or Back has an entry whose square overflows"},
		{"KFAC/Input", func() stepReporter { return &KFAC{} }, func(l *secondorder.Layer) { huge(l.Input) }, "Input or Back has an entry whose square overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			fresh := func() *secondorder.Layer {
				l := randRecord(rng, 6, 3, 2)
				l.Back = randDense(rng, 6, 2)
				setQuadraticRisk(l) // K-FAC's default norm constraint reads it
				return l
			}
			opt := tc.opt()
			bad := fresh()
			tc.spoil(bad)
			checkFailedStep(t, opt, []*secondorder.Layer{bad}, "optim: ", tc.want, false)
			clean := fresh()
			before := mat.DenseCopyOf(clean.W)
			if err := opt.Step([]*secondorder.Layer{clean}); err != nil {
				t.Fatalf("clean step after the refused one: %v", err)
			}
			if mat.Equal(before, clean.W) || !finiteDense(clean.W) {
				t.Errorf("clean step after the refused one did not move W to finite values: %v", mat.Formatted(clean.W))
			}
		})
	}
}
