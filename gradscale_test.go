package secondorder_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// TestCheckGradScale checks CheckGradScale on records built from random
// per-example gradients: refused exactly when Grad's rows sum to GradB.
func TestCheckGradScale(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 1))
	record := func(n, out int, gradScale float64) *secondorder.Layer {
		const in = 3
		l := &secondorder.Layer{W: mat.NewDense(out, in, nil), B: mat.NewVecDense(out, nil),
			Input: mat.NewDense(n, in, nil), Grad: mat.NewDense(n, out, nil)}
		for i := 0; i < n; i++ {
			for j := 0; j < in; j++ {
				l.Input.Set(i, j, rng.NormFloat64())
			}
			for j := 0; j < out; j++ {
				l.Grad.Set(i, j, rng.NormFloat64()+1)
			}
		}
		l.ComputeParamGrads()
		l.Grad.Scale(gradScale, l.Grad)
		return l
	}
	for _, tc := range []struct {
		name  string
		l     *secondorder.Layer
		wantN bool
	}{
		{"conventions", record(10, 4, 1), false},
		{"mean-loss Grad", record(10, 4, 0.1), true},
		{"mean-loss Grad n=2", record(2, 4, 0.5), true},
		{"Grad scaled otherwise", record(10, 4, 0.5), false},
		{"one example", record(1, 4, 1), false},
		{"no GradB", func() *secondorder.Layer { l := record(10, 4, 0.1); l.GradB = nil; return l }(), false},
		{"GradB zero", func() *secondorder.Layer { l := record(10, 4, 0.1); l.GradB.Zero(); return l }(), false},
		{"no Grad", func() *secondorder.Layer { l := record(10, 4, 1); l.Grad = nil; return l }(), false},
	} {
		err := tc.l.CheckGradScale()
		if got := errors.Is(err, secondorder.ErrGradDividedByN); got != tc.wantN || (err != nil && !got) {
			t.Errorf("%s: CheckGradScale() = %v, want divided-by-n %t", tc.name, err, tc.wantN)
		}
	}
}
