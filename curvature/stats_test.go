package curvature

import (
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/secondorder/secondorder/internal/testutil"
)

// TestInputStatistics proves the input statistics of thesis §3.3.3 against
// dense formulas: Mean is the column mean (gonum stat.Mean), Covariance is
// the 1/n covariance (n−1)/n · stat.CovarianceMatrix and also
// E[hhᵀ] − μμᵀ, SecondMoment is hᵀh/n. With more rows than one chunk.
// A second case with a mean of 1e6 and unit spread checks that the
// centered computation keeps its precision (relative 1e-8), where
// E[hhᵀ] − μμᵀ would lose about 12 digits. Tolerances 1e-12 relative
// otherwise.
func TestInputStatistics(t *testing.T) {
	rng := newRand(9)
	n, d := 700, 4
	h := testutil.RandDense(rng, n, d, 1)
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			h.Set(i, j, h.At(i, j)+float64(j))
		}
	}
	var mu mat.VecDense
	Mean(&mu, h)
	for j := 0; j < d; j++ {
		if w := stat.Mean(mat.Col(nil, j, h), nil); !equalScalar(mu.AtVec(j), w, 1e-13) {
			t.Errorf("Mean[%d] = %g, want %g", j, mu.AtVec(j), w)
		}
	}
	var cov, cov2, s mat.SymDense
	Covariance(&cov, h, nil)
	Covariance(&cov2, h, &mu)
	var want mat.SymDense
	stat.CovarianceMatrix(&want, h, nil)
	want.ScaleSym(float64(n-1)/float64(n), &want)
	testutil.EqualApprox(t, "Covariance", &cov, &want, 0, 1e-12)
	testutil.EqualApprox(t, "Covariance given μ", &cov2, &want, 0, 1e-12)

	SecondMoment(&s, h)
	var hh mat.Dense
	hh.Mul(h.T(), h)
	hh.Scale(1/float64(n), &hh)
	testutil.EqualApprox(t, "SecondMoment", &s, &hh, 0, 1e-12)
	var c mat.Dense
	c.Outer(-1, &mu, &mu)
	c.Add(&c, &s)
	testutil.EqualApprox(t, "E[hhᵀ] − μμᵀ", &cov, &c, 0, 1e-12)

	// Large mean: the exact covariance of base + 1e6 is that of base.
	base := testutil.RandDense(rng, 50, 3, 1)
	shifted := mat.NewDense(50, 3, nil)
	shifted.Apply(func(_, _ int, v float64) float64 { return v + 1e6 }, base)
	var cb, cs mat.SymDense
	Covariance(&cb, base, nil)
	Covariance(&cs, shifted, nil)
	testutil.EqualApprox(t, "Covariance at mean 1e6", &cs, &cb, 0, 1e-8)
}

func equalScalar(a, b, rel float64) bool {
	d := a - b
	if d < 0 {
		d = -d
	}
	m := max(a, -a, b, -b)
	return d <= rel*m
}

// TestMovingAverage proves the exponential moving average of Martens &
// Grosse (2015, §5), M_k = ε_k M_{k−1} + (1−ε_k) X_k with
// ε_k = min(1 − 1/k, ε): the zero value uses ε = 0.95; while 1 − 1/k ≤ ε
// (k ≤ 20) the average is the plain mean of the estimates; afterwards it
// follows the recurrence with weight ε; a different Decay gives its own
// switch point (ε = 0.5: mean of two, then halving); Reset starts afresh.
// Tolerance 1e-14 relative.
func TestMovingAverage(t *testing.T) {
	rng := newRand(10)
	xs := make([]*mat.SymDense, 30)
	for k := range xs {
		r := testutil.RandDense(rng, 3, 3, 1)
		xs[k] = mat.NewSymDense(3, nil)
		xs[k].SymOuterK(1, r)
	}
	var a MovingAverage
	if a.Mean() != nil || a.Count() != 0 {
		t.Fatal("zero value is not empty")
	}
	sum := mat.NewSymDense(3, nil)
	want := mat.NewSymDense(3, nil)
	for k, x := range xs {
		a.Add(x)
		sum.AddSym(sum, x)
		if k+1 <= 20 {
			want.ScaleSym(1/float64(k+1), sum)
		} else {
			var old mat.SymDense
			old.ScaleSym(0.95, want)
			want.ScaleSym(0.05, x)
			want.AddSym(want, &old)
		}
		if a.Count() != k+1 {
			t.Errorf("Count = %d, want %d", a.Count(), k+1)
		}
		testutil.EqualApprox(t, "ε=0.95", a.Mean(), want, 0, 1e-14)
	}
	if w := a.Weight(20); w != 0.95 {
		t.Errorf("Weight(20) = %g, want 0.95", w)
	}

	b := MovingAverage{Decay: 0.5}
	b.Add(xs[0])
	b.Add(xs[1])
	b.Add(xs[2])
	var m01, w3 mat.SymDense
	m01.AddSym(xs[0], xs[1])
	m01.ScaleSym(0.25, &m01)
	w3.ScaleSym(0.5, xs[2])
	w3.AddSym(&w3, &m01)
	testutil.EqualApprox(t, "ε=0.5", b.Mean(), &w3, 0, 1e-14)

	b.Reset()
	b.Add(xs[3])
	testutil.EqualApprox(t, "after Reset", b.Mean(), xs[3], 0, 0)
}
