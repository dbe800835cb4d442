package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
)

func TestElementwiseDerivatives(t *testing.T) {
	// Points away from the ReLU kink at 0.
	points := []float64{-4, -1.3, -0.2, 0.07, 0.5, 1.1, 3.7}
	for _, act := range []Elementwise{Identity{}, Sigmoid{}, Tanh{}, ReLU{}} {
		for _, a := range points {
			f := act.Func(a)
			d := act.Deriv(a, f)
			wantD := fd.Derivative(act.Func, a, central1)
			if !scalar.EqualWithinAbsOrRel(d, wantD, 1e-9, 1e-8) {
				t.Errorf("%s: φ'(%v) = %v, finite differences %v", act.Name(), a, d, wantD)
			}
			d2 := act.Deriv2(a, f)
			wantD2 := fd.Derivative(func(x float64) float64 { return act.Deriv(x, act.Func(x)) }, a, central1)
			if !scalar.EqualWithinAbsOrRel(d2, wantD2, 1e-8, 1e-7) {
				t.Errorf("%s: φ″(%v) = %v, finite differences %v", act.Name(), a, d2, wantD2)
			}
		}
	}
}

func TestElementwiseBatch(t *testing.T) {
	rng := newRand(1)
	for _, act := range []Elementwise{Identity{}, Sigmoid{}, Tanh{}, ReLU{}} {
		a := testutil.RandDense(rng, 4, 3, 2)
		f := mat.NewDense(4, 3, nil)
		act.Forward(f, a)
		g := testutil.RandDense(rng, 5, 3, 1)
		idx := []int{3, 0, 0, 2, 1}
		dst := mat.NewDense(5, 3, nil)
		act.Backward(dst, g, a, f, idx)
		for r, i := range idx {
			for j := 0; j < 3; j++ {
				if got, want := f.At(i, j), act.Func(a.At(i, j)); got != want {
					t.Errorf("%s: Forward(%d,%d) = %v, want %v", act.Name(), i, j, got, want)
				}
				want := g.At(r, j) * act.Deriv(a.At(i, j), f.At(i, j))
				if got := dst.At(r, j); !scalar.EqualWithinAbsOrRel(got, want, 1e-15, 1e-14) {
					t.Errorf("%s: Backward(%d,%d) = %v, want %v", act.Name(), r, j, got, want)
				}
			}
		}
		// In place, without index.
		g2 := testutil.RandDense(rng, 4, 3, 1)
		want := mat.NewDense(4, 3, nil)
		act.Backward(want, g2, a, f, nil)
		act.Backward(g2, g2, a, f, nil)
		equalApprox(t, act.Name()+" in place", g2, want, 0, 0)
	}
}

func TestSigmoidStable(t *testing.T) {
	for _, a := range []float64{-1000, -745, -40, 0, 40, 745, 1000} {
		f := sigmoid(a)
		if math.IsNaN(f) || f < 0 || f > 1 {
			t.Errorf("sigmoid(%v) = %v", a, f)
		}
		sp := softplus(a)
		want := math.Max(a, 0)
		if math.Abs(a) < 40 {
			want = math.Log1p(math.Exp(a))
		}
		if !scalar.EqualWithinAbsOrRel(sp, want, 1e-15, 1e-15) {
			t.Errorf("softplus(%v) = %v, want %v", a, sp, want)
		}
	}
	if got := sigmoid(-30); !scalar.EqualWithinRel(got, math.Exp(-30)/(1+math.Exp(-30)), 1e-15) {
		t.Errorf("sigmoid(-30) = %v loses relative precision", got)
	}
}

func TestSoftmax(t *testing.T) {
	rng := newRand(2)
	a := testutil.RandDense(rng, 3, 4, 2)
	a.Set(2, 1, 1000) // would overflow without the max shift
	a.Set(2, 3, 999)
	f := mat.NewDense(3, 4, nil)
	Softmax{}.Forward(f, a)
	for i := 0; i < 3; i++ {
		s := 0.0
		for j := 0; j < 4; j++ {
			if v := f.At(i, j); math.IsNaN(v) || v < 0 {
				t.Fatalf("softmax row %d = %v", i, row(f, i))
			}
			s += f.At(i, j)
		}
		if !scalar.EqualWithinAbs(s, 1, 1e-15) {
			t.Errorf("softmax row %d sums to %v", i, s)
		}
	}
	if want := 1 / (1 + math.Exp(-1)); !scalar.EqualWithinAbsOrRel(f.At(2, 1), want, 1e-12, 1e-12) {
		t.Errorf("softmax at large logits = %v, want %v", f.At(2, 1), want)
	}

	// Backward equals Jᵀ g with J from finite differences, J symmetric.
	g := testutil.RandDense(rng, 4, 4, 1)
	idx := []int{1, 0, 1, 2}
	dst := mat.NewDense(4, 4, nil)
	Softmax{}.Backward(dst, g, a, f, idx)
	for r, i := range idx {
		j := actJacobianFD(Softmax{}, rowVec(a, i))
		var want mat.VecDense
		want.MulVec(j.T(), g.RowView(r))
		equalApprox(t, "softmax Jᵀg", dst.RowView(r), &want, 1e-9, 1e-7)
		equalApprox(t, "softmax J symmetric", j, j.T(), 1e-9, 1e-7)
	}
	// Jacobian helper matches the explicit diag(f) − f fᵀ.
	o := Output{Act: Softmax{}, A: a, F: f}
	var jac mat.Dense
	Jacobian(&jac, o, 0)
	fr := f.RowView(0)
	want := mat.NewDense(4, 4, nil)
	want.Outer(-1, fr, fr)
	for p := 0; p < 4; p++ {
		want.Set(p, p, want.At(p, p)+fr.AtVec(p))
	}
	equalApprox(t, "softmax Jacobian", &jac, want, 1e-16, 1e-14)
}

func TestActivationPanics(t *testing.T) {
	a := mat.NewDense(2, 3, nil)
	for _, act := range []Activation{Identity{}, Sigmoid{}, Tanh{}, ReLU{}, Softmax{}} {
		expectPanic(t, act.Name()+" Forward", func() { act.Forward(mat.NewDense(2, 2, nil), a) })
		expectPanic(t, act.Name()+" Backward idx", func() {
			act.Backward(mat.NewDense(1, 3, nil), mat.NewDense(1, 3, nil), a, a, []int{2})
		}, "out of range")
		expectPanic(t, act.Name()+" Backward rows", func() {
			act.Backward(mat.NewDense(3, 3, nil), mat.NewDense(3, 3, nil), a, a, nil)
		})
	}
}
