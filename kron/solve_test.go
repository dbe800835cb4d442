package kron_test

import (
	"errors"
	"fmt"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/kron"
)

var squareSizes = []struct{ na, nb int }{{1, 1}, {1, 4}, {3, 1}, {2, 3}, {3, 4}, {5, 5}}

// TestCholeskyKron checks (A⊗B)⁻¹ from the Cholesky factors against a dense
// solve with A⊗B, in matrix and vec form, in place, and the log-determinant.
func TestCholeskyKron(t *testing.T) {
	rng := newRand(5)
	var k kron.CholeskyKron // reused across sizes
	for _, s := range squareSizes {
		t.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(t *testing.T) {
			a, b := randSPD(rng, s.na), randSPD(rng, s.nb)
			if err := k.Factorize(a, b); err != nil {
				t.Fatal(err)
			}
			full := kronDense(a, b)
			x := randDense(rng, s.nb, s.na)
			want := denseSolve(t, full, vecOf(x))

			y := checkKronSolves(t, &k, x, want)
			// The K-FAC reading: G⁻¹ X Ā⁻¹.
			var bx, bxa mat.Dense
			bx.Solve(b, x)
			bxa.Mul(&bx, denseInverse(t, a))
			checkApprox(t, "B⁻¹XA⁻¹", y, &bxa, tol)

			strided := mat.NewDense(s.na*s.nb, 2, nil)
			sv := strided.ColView(1).(*mat.VecDense)
			sv.CopyVec(vecOf(x))
			k.SolveVec(sv, sv)
			checkVecApprox(t, "SolveVec strided in place", sv, want, tol)

			ld, _ := mat.LogDet(full)
			if got := k.LogDet(); !scalar.EqualWithinAbsOrRel(got, ld, 1e-9, 1e-9) {
				t.Errorf("LogDet = %v, want %v", got, ld)
			}
			panics(t, "Solve X shape", func() { k.Solve(&mat.Dense{}, randDense(rng, s.na+1, s.nb)) })
		})
	}

	rng = newRand(6)
	spd, bad := randSPD(rng, 3), symWithEigen(rng, []float64{1, -0.1, 2})
	checkFactorError(t, k.Factorize(bad, spd), kron.ErrNotPositiveDefinite, "A")
	panics(t, "Solve after failed Factorize", func() { k.Solve(&mat.Dense{}, randDense(rng, 3, 3)) })
	checkFactorError(t, k.Factorize(spd, bad), kron.ErrNotPositiveDefinite, "B")
	// A singular positive semidefinite factor is not positive definite.
	checkFactorError(t, k.Factorize(spd, randPSD(rng, 3, 2, 0)), kron.ErrNotPositiveDefinite, "B")
}

// kronSolver is the solving side of CholeskyKron and LUKron.
type kronSolver interface {
	Solve(dst *mat.Dense, x mat.Matrix)
	SolveVec(dst *mat.VecDense, v mat.Vector)
}

// checkKronSolves checks k.Solve, into a new matrix and in place, and
// k.SolveVec against want = (A⊗B)⁻¹ vec(x), within tol, and returns the
// solution of Solve.
func checkKronSolves(t *testing.T, k kronSolver, x *mat.Dense, want *mat.VecDense) *mat.Dense {
	t.Helper()
	var y mat.Dense
	k.Solve(&y, x)
	checkVecApprox(t, "Solve", vecOf(&y), want, tol)
	inplace := mat.DenseCopyOf(x)
	k.Solve(inplace, inplace)
	checkApprox(t, "Solve in place", inplace, &y, tol)
	var v mat.VecDense
	k.SolveVec(&v, vecOf(x))
	checkVecApprox(t, "SolveVec", &v, want, tol)
	return &y
}

// TestLUKron checks (A⊗B)⁻¹ for general square factors against a dense
// solve.
func TestLUKron(t *testing.T) {
	rng := newRand(7)
	var k kron.LUKron
	for _, s := range squareSizes {
		t.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(t *testing.T) {
			a := addDiag(randDense(rng, s.na, s.na), 3)
			b := addDiag(randDense(rng, s.nb, s.nb), 3)
			if err := k.Factorize(a, b); err != nil {
				t.Fatal(err)
			}
			x := randDense(rng, s.nb, s.na)
			want := denseSolve(t, kronDense(a, b), vecOf(x))
			checkKronSolves(t, &k, x, want)
		})
	}
	a := randDense(rng, 3, 3)
	singular := mat.NewDense(2, 2, []float64{1, 2, 2, 4})
	checkFactorError(t, k.Factorize(a, singular), kron.ErrSingular, "B")
	checkFactorError(t, k.Factorize(singular, a), kron.ErrSingular, "A")
	// Ill-conditioned but invertible: a mat.Condition error, solves allowed.
	ill := mat.NewDense(2, 2, []float64{1, 1, 1, 1 + 0x1p-52})
	err := k.Factorize(a, ill)
	var cond mat.Condition
	if !errors.As(err, &cond) {
		t.Errorf("ill-conditioned factor: error %v, want a mat.Condition", err)
	}
	k.Solve(&mat.Dense{}, randDense(rng, 2, 3))
	panics(t, "non-square factor", func() { _ = k.Factorize(randDense(rng, 2, 3), a) })
}

// TestEigenKron checks the exact damped solve (A⊗B + λI)⁻¹ against a dense
// solve, for positive semidefinite (singular) and definite factors, several
// λ with one factorization, and λ = 0.
func TestEigenKron(t *testing.T) {
	rng := newRand(8)
	for _, s := range squareSizes {
		for _, psd := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d⊗%d/singular=%v", s.na, s.nb, psd), func(t *testing.T) {
				var a, b *mat.SymDense
				if psd {
					// Rank-deficient, as K-FAC factors from small batches are.
					a, b = randPSD(rng, s.na, max(s.na-1, 1), 0), randPSD(rng, s.nb, max(s.nb-2, 1), 0)
				} else {
					a, b = randSPD(rng, s.na), randSPD(rng, s.nb)
				}
				var e kron.EigenKron
				if err := e.Factorize(a, b); err != nil {
					t.Fatal(err)
				}
				full := kronDense(a, b)
				x := randDense(rng, s.nb, s.na)
				singular := psd && (s.na > 1 || s.nb > 2)
				for _, lambda := range []float64{0, 1e-3, 0.1, 1, 10} {
					var y mat.Dense
					err := e.Solve(&y, x, lambda)
					if lambda == 0 && singular {
						checkFactorError(t, err, kron.ErrSingular, map[bool]string{true: "A", false: "B"}[s.na > 1])
						continue
					}
					if err != nil {
						t.Fatalf("λ=%g: %v", lambda, err)
					}
					want := denseSolve(t, addDiag(full, lambda), vecOf(x))
					// The conditioning of A⊗B + λI grows as λ → 0.
					tl := tol
					if lambda < 0.01 {
						tl = 1e-7
					}
					checkVecApprox(t, fmt.Sprintf("Solve λ=%g", lambda), vecOf(&y), want, tl)
					var v mat.VecDense
					if err := e.SolveVec(&v, vecOf(x), lambda); err != nil {
						t.Fatal(err)
					}
					checkVecApprox(t, fmt.Sprintf("SolveVec λ=%g", lambda), &v, want, tl)
					inplace := mat.DenseCopyOf(x)
					if err := e.Solve(inplace, inplace, lambda); err != nil {
						t.Fatal(err)
					}
					checkApprox(t, "Solve in place", inplace, &y, tl)
				}
			})
		}
	}

	var e kron.EigenKron
	spd := randSPD(rng, 3)
	checkFactorError(t, e.Factorize(symWithEigen(rng, []float64{1, -0.1, 2}), spd), kron.ErrNotPositiveSemidefinite, "A")
	// Rounding-error negative eigenvalues are accepted as zeros.
	if err := e.Factorize(spd, symWithEigen(rng, []float64{1, -1e-14, 2})); err != nil {
		t.Errorf("eigenvalue −1e-14: %v", err)
	}
	if _, lb := e.Values(); lb[0] != 0 {
		t.Errorf("smallest eigenvalue of B = %g, want it clamped to 0", lb[0])
	}
	panics(t, "negative λ", func() { _ = e.Solve(&mat.Dense{}, randDense(rng, 3, 3), -1) })
}

// TestFactoredTikhonov checks the factored Tikhonov approximation against its
// dense definition (A + π√λ I)⁻¹ ⊗ (B + (√λ/π) I)⁻¹, against the exact
// (A⊗B + λI)⁻¹ where they agree, the trace-norm π, and the retry policy.
func TestFactoredTikhonov(t *testing.T) {
	rng := newRand(9)
	for _, s := range squareSizes {
		for _, unit := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d⊗%d/unitπ=%v", s.na, s.nb, unit), func(t *testing.T) {
				// Different scales make the trace-norm π differ from 1.
				a := randPSD(rng, s.na, max(s.na-1, 1), 0)
				a.ScaleSym(7, a)
				b := randPSD(rng, s.nb, max(s.nb-1, 1), 0)
				ft := kron.FactoredTikhonov{UnitPi: unit}
				wantPi := 1.0
				if !unit {
					wantPi = sqrt((mat.Trace(a) / float64(s.na)) / (mat.Trace(b) / float64(s.nb)))
				}
				x := randDense(rng, s.nb, s.na)
				for _, lambda := range []float64{1e-3, 0.1, 1, 10} {
					if err := ft.Factorize(a, b, lambda); err != nil {
						t.Fatal(err)
					}
					if !scalar.EqualWithinAbsOrRel(ft.Pi(), wantPi, 1e-14, 1e-14) || ft.Damping() != lambda {
						t.Errorf("π, λ = %v, %v; want %v, %v", ft.Pi(), ft.Damping(), wantPi, lambda)
					}
					ga, gb := ft.Shifts()
					if !scalar.EqualWithinAbsOrRel(ga*gb, lambda, 1e-14, 1e-14) || !scalar.EqualWithinAbsOrRel(ga/gb, wantPi*wantPi, 1e-12, 1e-12) {
						t.Errorf("shifts %v, %v for π=%v, λ=%v", ga, gb, wantPi, lambda)
					}
					def := kronDense(denseInverse(t, addDiag(dense(a), ga)), denseInverse(t, addDiag(dense(b), gb)))
					var want mat.VecDense
					want.MulVec(def, vecOf(x))
					var y mat.Dense
					ft.Solve(&y, x)
					checkVecApprox(t, "Solve", vecOf(&y), &want, 1e-9)
					var v mat.VecDense
					ft.SolveVec(&v, vecOf(x))
					checkVecApprox(t, "SolveVec", &v, &want, 1e-9)
				}
			})
		}
	}

	t.Run("λ=0 is exact", func(t *testing.T) {
		a, b := randSPD(rng, 3), randSPD(rng, 4)
		var ft kron.FactoredTikhonov
		if err := ft.Factorize(a, b, 0); err != nil {
			t.Fatal(err)
		}
		x := randDense(rng, 4, 3)
		var y mat.Dense
		ft.Solve(&y, x)
		checkVecApprox(t, "Solve", vecOf(&y), denseSolve(t, kronDense(a, b), vecOf(x)), tol)
	})

	// A = aI, B = bI: the approximation is (a + π√λ)⁻¹(b + √λ/π)⁻¹ I, which
	// with π = √(a/b) is (√(ab) + √λ)⁻² I, against the exact (ab + λ)⁻¹ I:
	// the cross term 2√(abλ) is what the approximation adds. With a = b = 0
	// (π then falls back to 1) it is exact, λ⁻¹ I.
	t.Run("scaled identities", func(t *testing.T) {
		const lambda = 0.3
		for _, c := range []struct{ a, b float64 }{{2, 0.5}, {3, 3}, {0.01, 5}, {0, 0}} {
			for _, unit := range []bool{false, true} {
				a := mat.NewSymDense(3, nil)
				b := mat.NewSymDense(2, nil)
				for i := 0; i < 3; i++ {
					a.SetSym(i, i, c.a)
				}
				for i := 0; i < 2; i++ {
					b.SetSym(i, i, c.b)
				}
				ft := kron.FactoredTikhonov{UnitPi: unit}
				if err := ft.Factorize(a, b, lambda); err != nil {
					t.Fatal(err)
				}
				want := 1 / ((c.a + sqrt(lambda)) * (c.b + sqrt(lambda)))
				if !unit {
					want = 1 / ((sqrt(c.a*c.b) + sqrt(lambda)) * (sqrt(c.a*c.b) + sqrt(lambda)))
				}
				if c.a == 0 && c.b == 0 && !scalar.EqualWithinAbsOrRel(want, 1/lambda, 1e-14, 1e-14) {
					t.Errorf("a = b = 0: factored %v, exact %v", want, 1/lambda)
				}
				x := randDense(rng, 2, 3)
				var y, wantY mat.Dense
				ft.Solve(&y, x)
				wantY.Scale(want, x)
				checkApprox(t, fmt.Sprintf("a=%v b=%v unitπ=%v", c.a, c.b, unit), &y, &wantY, 1e-13)
			}
		}
	})

	// The trace-norm π minimizes the trace of the difference between the
	// damped factored product and A⊗B + λI.
	t.Run("π minimizes the trace error", func(t *testing.T) {
		a := randPSD(rng, 4, 2, 0)
		a.ScaleSym(10, a)
		b := randPSD(rng, 3, 3, 0)
		const lambda = 0.5
		var ft kron.FactoredTikhonov
		if err := ft.Factorize(a, b, lambda); err != nil {
			t.Fatal(err)
		}
		traceErr := func(pi float64) float64 {
			k := kronDense(addDiag(dense(a), pi*sqrt(lambda)), addDiag(dense(b), sqrt(lambda)/pi))
			return mat.Trace(k) - mat.Trace(addDiag(kronDense(a, b), lambda))
		}
		best := traceErr(ft.Pi())
		for _, f := range []float64{0.5, 0.9, 0.99, 1.01, 1.1, 2} {
			if e := traceErr(f * ft.Pi()); e <= best {
				t.Errorf("trace error at %v·π = %v ≤ %v at π", f, e, best)
			}
		}
	})

	t.Run("retry", func(t *testing.T) {
		// A has eigenvalue −0.05; B = I, so π = √(tr A/3) and A + π√λ I is
		// positive definite once π√λ > 0.05.
		a := symWithEigen(rng, []float64{1, -0.05, 2})
		b := mat.NewSymDense(2, []float64{1, 0, 0, 1})
		const lambda = 1e-6
		var ft kron.FactoredTikhonov
		fe := checkFactorError(t, ft.Factorize(a, b, lambda), kron.ErrNotPositiveDefinite, "A")
		if fe.Damping != lambda {
			t.Errorf("FactorError.Damping = %v, want %v", fe.Damping, lambda)
		}
		panics(t, "Solve after failure", func() { ft.Solve(&mat.Dense{}, randDense(rng, 2, 3)) })

		ft.Retry = kron.Retry{Tries: 3}
		fe = checkFactorError(t, ft.Factorize(a, b, lambda), kron.ErrNotPositiveDefinite, "A")
		if !scalar.EqualWithinRel(fe.Damping, 1e-4, 1e-12) {
			t.Errorf("after 3 tries FactorError.Damping = %v, want 1e-4", fe.Damping)
		}

		ft.Retry = kron.Retry{Tries: 10}
		if err := ft.Factorize(a, b, lambda); err != nil {
			t.Fatal(err)
		}
		pi := sqrt(mat.Trace(a) / 3)
		used := ft.Damping()
		if !(pi*sqrt(used) > 0.05 && pi*sqrt(used/10) <= 0.05) {
			t.Errorf("retry settled on λ = %v (π√λ = %v), want the first power-of-10 multiple of %v with π√λ > 0.05", used, pi*sqrt(used), lambda)
		}
		ga, _ := ft.Shifts()
		x := randDense(rng, 2, 3)
		var y mat.Dense
		ft.Solve(&y, x)
		def := kronDense(denseInverse(t, addDiag(dense(a), ga)), denseInverse(t, addDiag(dense(b), sqrt(used)/pi)))
		var want mat.VecDense
		want.MulVec(def, vecOf(x))
		checkVecApprox(t, "Solve after retry", vecOf(&y), &want, 1e-9)

		// Zero damping is not retried.
		checkFactorError(t, ft.Factorize(a, b, 0), kron.ErrNotPositiveDefinite, "A")
		// B fails: named.
		checkFactorError(t, (&kron.FactoredTikhonov{UnitPi: true}).Factorize(b, a, 1e-6), kron.ErrNotPositiveDefinite, "B")
		// A custom growth.
		ft.Retry = kron.Retry{Tries: 40, Growth: 2}
		if err := ft.Factorize(a, b, lambda); err != nil {
			t.Fatal(err)
		}
		if used := ft.Damping(); !(pi*sqrt(used) > 0.05 && pi*sqrt(used/2) <= 0.05) {
			t.Errorf("growth 2: λ = %v", used)
		}
	})
}

// TestEigenKronScaled checks the eigenvalue-corrected solve and product
// (George et al. 2018) against their dense definition
// M = (Q_A⊗Q_B) diag(vec S) (Q_A⊗Q_B)ᵀ built from the bases EigenKron
// returns: SolveScaled against a dense solve with M + λI, MulScaled
// against M vec(X); with S = λ_B λ_Aᵀ, SolveScaled equals Solve and
// MulScaled equals (A⊗B) vec(X) (tolerance 1e-10); ScaleRotated of the
// rotated X is SolveScaled; a zero entry of S + λ is ErrSingular.
func TestEigenKronScaled(t *testing.T) {
	rng := newRand(18)
	for _, s := range squareSizes {
		t.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(t *testing.T) {
			a, b := randSPD(rng, s.na), randSPD(rng, s.nb)
			var e kron.EigenKron
			if err := e.Factorize(a, b); err != nil {
				t.Fatal(err)
			}
			qa, qb := e.Bases()
			q := kronDense(qa, qb)
			sc := mat.NewDense(s.nb, s.na, nil)
			for i := 0; i < s.nb; i++ {
				for j := 0; j < s.na; j++ {
					sc.Set(i, j, 0.1+rng.Float64())
				}
			}
			var m mat.Dense
			m.Mul(q, mat.NewDiagDense(s.na*s.nb, vecOf(sc).RawVector().Data))
			m.Mul(&m, q.T())
			x := randDense(rng, s.nb, s.na)
			for _, lambda := range []float64{0, 0.3} {
				var y mat.Dense
				if err := e.SolveScaled(&y, x, sc, lambda); err != nil {
					t.Fatal(err)
				}
				checkVecApprox(t, fmt.Sprintf("SolveScaled λ=%g", lambda), vecOf(&y), denseSolve(t, addDiag(&m, lambda), vecOf(x)), 1e-10)
			}
			var p mat.Dense
			e.MulScaled(&p, x, sc)
			var want mat.VecDense
			want.MulVec(&m, vecOf(x))
			checkVecApprox(t, "MulScaled", vecOf(&p), &want, 1e-10)

			la, lb := e.Values()
			kr := mat.NewDense(s.nb, s.na, nil)
			for i, vb := range lb {
				for j, va := range la {
					kr.Set(i, j, vb*va)
				}
			}
			var y1, y2 mat.Dense
			if err := e.SolveScaled(&y1, x, kr, 0.2); err != nil {
				t.Fatal(err)
			}
			if err := e.Solve(&y2, x, 0.2); err != nil {
				t.Fatal(err)
			}
			checkApprox(t, "SolveScaled with λ_B λ_Aᵀ vs Solve", &y1, &y2, 1e-10)
			e.MulScaled(&p, x, kr)
			want.MulVec(kronDense(a, b), vecOf(x))
			checkVecApprox(t, "MulScaled with λ_B λ_Aᵀ vs A⊗B", vecOf(&p), &want, 1e-10)

			var z, y3 mat.Dense
			e.Rotate(&z, x)
			if err := e.ScaleRotated(&y3, &z, kr, 0.2); err != nil {
				t.Fatal(err)
			}
			checkApprox(t, "ScaleRotated of the rotated X vs SolveScaled", &y3, &y1, 1e-10)

			sc.Set(0, 0, 0)
			checkFactorError(t, e.SolveScaled(&y1, x, sc, 0), kron.ErrSingular, "S")
			checkFactorError(t, e.ScaleRotated(&y1, &z, sc, 0), kron.ErrSingular, "S")
		})
	}
}

// TestEigenKronRotate: Rotate gives Q_Bᵀ X Q_A (against explicit products,
// 1e-12), RotateBack inverts it, in place too.
func TestEigenKronRotate(t *testing.T) {
	rng := newRand(19)
	var e kron.EigenKron
	if err := e.Factorize(randSPD(rng, 4), randSPD(rng, 3)); err != nil {
		t.Fatal(err)
	}
	qa, qb := e.Bases()
	x := randDense(rng, 3, 4)
	var got, want mat.Dense
	e.Rotate(&got, x)
	want.Mul(qb.T(), x)
	want.Mul(&want, qa)
	checkApprox(t, "Rotate", &got, &want, 1e-12)
	e.RotateBack(&got, &got)
	checkApprox(t, "RotateBack(Rotate(X))", &got, x, 1e-12)
}
