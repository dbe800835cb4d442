package kron_test

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/kron"
)

func TestProductExample(t *testing.T) {
	a := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
	b := mat.NewDense(2, 3, []float64{0, 5, 6, 7, 8, 9})
	want := mat.NewDense(4, 6, []float64{
		0, 5, 6, 0, 10, 12,
		7, 8, 9, 14, 16, 18,
		0, 15, 18, 0, 20, 24,
		21, 24, 27, 28, 32, 36,
	})
	checkApprox(t, "A⊗B", kronDense(a, b), want, 0)

	// A non-empty destination of the right shape is overwritten; a view
	// with a stride works too.
	big := mat.NewDense(5, 7, nil)
	big.Apply(func(_, _ int, _ float64) float64 { return math.NaN() }, big)
	view := big.Slice(1, 5, 1, 7).(*mat.Dense)
	kron.Product(view, a, b)
	checkApprox(t, "A⊗B into a view", view, want, 0)
	panics(t, "Product wrong dst", func() { kron.Product(mat.NewDense(4, 5, nil), a, b) })
}

var shapes = []struct{ m, n, p, q int }{
	{1, 1, 1, 1},
	{1, 1, 3, 2},
	{2, 3, 1, 1},
	{2, 3, 3, 4},
	{3, 4, 2, 3},
	{1, 4, 3, 1},
	{4, 1, 1, 3},
	{5, 5, 5, 5},
	{3, 3, 4, 4},
}

func TestVec(t *testing.T) {
	x := mat.NewDense(2, 3, []float64{1, 2, 3, 4, 5, 6})
	v := vecOf(x)
	checkVecApprox(t, "vec", v, mat.NewVecDense(6, []float64{1, 4, 2, 5, 3, 6}), 0)
	var back mat.Dense
	kron.Unvec(&back, v, 2, 3)
	checkApprox(t, "unvec(vec(X))", &back, x, 0)
	panics(t, "Unvec wrong length", func() { kron.Unvec(&mat.Dense{}, v, 4, 2) })
	panics(t, "Vec wrong dst", func() { kron.Vec(mat.NewVecDense(5, nil), x) })
}

// TestVecIdentity checks the thesis's identity vec(AXB) = (Bᵀ⊗A) vec(X)
// (§3.3.1), which fixes the conventions of Product and Vec together.
func TestVecIdentity(t *testing.T) {
	rng := newRand(1)
	for _, s := range shapes {
		// A: m×n, X: n×p, B: p×q.
		a := randDense(rng, s.m, s.n)
		x := randDense(rng, s.n, s.p)
		b := randDense(rng, s.p, s.q)
		var ax, axb mat.Dense
		ax.Mul(a, x)
		axb.Mul(&ax, b)
		var got mat.VecDense
		got.MulVec(kronDense(b.T(), a), vecOf(x))
		checkVecApprox(t, "(Bᵀ⊗A)vec(X)", &got, vecOf(&axb), tol)
	}
}

func TestMulKron(t *testing.T) {
	rng := newRand(2)
	for _, s := range shapes {
		a := randDense(rng, s.m, s.n)
		b := randDense(rng, s.p, s.q)
		c := randDense(rng, s.n, 2)
		d := randDense(rng, s.q, 3)
		var ac, bd, want mat.Dense
		kron.MulKron(&ac, &bd, a, b, c, d)
		want.Mul(kronDense(a, b), kronDense(c, d))
		checkApprox(t, "AC⊗BD", kronDense(&ac, &bd), &want, tol)
		// (A⊗B)ᵀ = Aᵀ⊗Bᵀ.
		checkApprox(t, "(A⊗B)ᵀ", kronDense(a.T(), b.T()), kronDense(a, b).T(), 0)
	}
	panics(t, "MulKron shapes", func() {
		kron.MulKron(&mat.Dense{}, &mat.Dense{}, randDense(rng, 2, 3), randDense(rng, 2, 2), randDense(rng, 2, 2), randDense(rng, 2, 2))
	})
}

func TestIdentities(t *testing.T) {
	rng := newRand(3)
	for _, s := range shapes {
		a := randDense(rng, s.m, s.n)
		b := randDense(rng, s.p, s.q)
		k := kronDense(a, b)
		if got, want := kron.FrobeniusNorm(a, b), mat.Norm(k, 2); !scalar.EqualWithinAbsOrRel(got, want, tol, tol) {
			t.Errorf("Norm %v×%v: got %v, want %v", s, s, got, want)
		}
		if s.m != s.n || s.p != s.q {
			panics(t, "Trace of non-square factors", func() { kron.Trace(a, b) })
			continue
		}
		if got, want := kron.Trace(a, b), mat.Trace(k); !scalar.EqualWithinAbsOrRel(got, want, tol, tol) {
			t.Errorf("Trace %v: got %v, want %v", s, got, want)
		}
		ld, sign := kron.LogDet(a, b)
		wld, wsign := mat.LogDet(k)
		if sign != wsign || !scalar.EqualWithinAbsOrRel(ld, wld, 1e-9, 1e-9) {
			t.Errorf("LogDet %v: got (%v, %v), want (%v, %v)", s, ld, sign, wld, wsign)
		}
	}
	// Signs: det(A) < 0 with odd n_B flips the sign, with even n_B does not.
	a := mat.NewDense(2, 2, []float64{0, 1, 1, 0}) // det −1
	for nb, want := range map[int]float64{1: -1, 2: 1, 3: -1} {
		b := mat.NewDiagDense(nb, nil)
		for i := 0; i < nb; i++ {
			b.SetDiag(i, 2)
		}
		ld, sign := kron.LogDet(a, b)
		if sign != want || !scalar.EqualWithinAbsOrRel(ld, 2*float64(nb)*math.Log(2), tol, tol) {
			t.Errorf("LogDet(swap, 2I_%d) = (%v, %v), want (%v, %v)", nb, ld, sign, 2*float64(nb)*math.Log(2), want)
		}
	}
	if ld, sign := kron.LogDet(mat.NewDense(2, 2, []float64{1, 2, 2, 4}), a); sign != 0 || !math.IsInf(ld, -1) {
		t.Errorf("LogDet of singular factor = (%v, %v), want (-Inf, 0)", ld, sign)
	}
}
