package curvature

import (
	"errors"
	"math"
	"sort"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
)

// randSym returns a random symmetric n×n matrix Q diag(lam) Qᵀ with a random
// orthogonal Q, or a random symmetric matrix with N(0,1) entries when lam
// is nil.
func randSym(seed uint64, n int, lam []float64) *mat.SymDense {
	rng := newRand(seed)
	if lam == nil {
		a := mat.NewSymDense(n, nil)
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				a.SetSym(i, j, rng.NormFloat64())
			}
		}
		return a
	}
	var qr mat.QR
	qr.Factorize(testutil.RandDense(rng, n, n, 1))
	var q mat.Dense
	qr.QTo(&q)
	var m mat.Dense
	m.Mul(&q, mat.NewDiagDense(n, lam))
	m.Mul(&m, q.T())
	a := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			a.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	return a
}

// offDiagSq returns Σ_{j≠i} A_ij² for every row i, and their sum.
func offDiagSq(a *mat.SymDense) (rows []float64, total float64) {
	n := a.SymmetricDim()
	rows = make([]float64, n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if j != i {
				rows[i] += a.At(i, j) * a.At(i, j)
			}
		}
		total += rows[i]
	}
	return rows, total
}

// TestHutchinsonExactOnDiagonal: with Rademacher probes z∘Az = diag(A) and
// zᵀAz = tr A for a diagonal A, so one probe is exact and the standard
// errors are zero (tolerance 1e-12).
func TestHutchinsonExactOnDiagonal(t *testing.T) {
	d := []float64{3, -1, 0.5, 7, 2}
	a := mat.NewSymDense(len(d), nil)
	tr := 0.0
	for i, v := range d {
		a.SetSym(i, i, v)
		tr += v
	}
	for _, s := range []int{1, 7} {
		h := Hutchinson{Samples: s, Rand: newRand(1)}
		est, err := h.Trace(SymOperator{a})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(est.Value-tr) > 1e-12 || est.StdErr > 1e-12 || est.Samples != s {
			t.Errorf("S=%d: trace %+v, want %g with zero error", s, est, tr)
		}
		var got, se mat.VecDense
		if err := h.Diagonal(&got, &se, SymOperator{a}); err != nil {
			t.Fatal(err)
		}
		testutil.EqualApprox(t, "diagonal", &got, mat.NewVecDense(len(d), d), 1e-12, 0)
		if m := testutil.MaxAbs(&se); m > 1e-12 {
			t.Errorf("S=%d: diagonal standard errors up to %g, want 0", s, m)
		}
	}
}

// TestHutchinsonRate checks Hutchinson's estimators where they are not
// exact against their closed-form variances, Var(zᵀAz) = 2 Σ_{i≠j} A_ij² and
// Var(z_i (Az)_i) = Σ_{j≠i} A_ij²: over 400 independent runs of S probes the
// root-mean-square errors of the trace and of each diagonal entry (pooled)
// are within 12 % of √(Var/S) for S = 10, 40, 160 — the 1/√S rate — and the
// mean of the reported standard errors is within 12 % of it too. The
// estimate of tr A over all runs is unbiased within 4 standard errors of
// the mean.
func TestHutchinsonRate(t *testing.T) {
	const n, runs = 12, 400
	a := randSym(3, n, nil)
	rows, total := offDiagSq(a)
	tr := mat.Trace(a)
	rng := newRand(4)
	for _, s := range []int{10, 40, 160} {
		wantTr := math.Sqrt(2 * total / float64(s))
		var sqTr, seTr, bias, sqDiag, wantDiag, seDiag float64
		for i := range rows {
			wantDiag += rows[i] / float64(s)
		}
		for r := 0; r < runs; r++ {
			h := Hutchinson{Samples: s, Rand: rng}
			est, err := h.Trace(SymOperator{a})
			if err != nil {
				t.Fatal(err)
			}
			sqTr += (est.Value - tr) * (est.Value - tr)
			seTr += est.StdErr
			bias += est.Value - tr
			var d, se mat.VecDense
			if err := h.Diagonal(&d, &se, SymOperator{a}); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				e := d.AtVec(i) - a.At(i, i)
				sqDiag += e * e
				seDiag += se.AtVec(i) * se.AtVec(i)
			}
		}
		for _, c := range []struct {
			what      string
			got, want float64
		}{
			{"trace RMS error", math.Sqrt(sqTr / runs), wantTr},
			{"trace mean standard error", seTr / runs, wantTr},
			{"diagonal RMS error", math.Sqrt(sqDiag / runs), math.Sqrt(wantDiag)},
			{"diagonal RMS standard error", math.Sqrt(seDiag / runs), math.Sqrt(wantDiag)},
		} {
			if r := c.got / c.want; r < 0.88 || r > 1.12 {
				t.Errorf("S=%d: %s %.4g, closed form %.4g (ratio %.3f)", s, c.what, c.got, c.want, r)
			}
		}
		if b := math.Abs(bias / runs); b > 4*wantTr/math.Sqrt(runs) {
			t.Errorf("S=%d: trace bias %.4g over %d runs, beyond 4 standard errors %.4g", s, b, runs, 4*wantTr/math.Sqrt(runs))
		}
	}
}

// TestLanczosFull: with k = n steps the Ritz values are the eigenvalues of
// A (gonum's EigenSym; tolerance 1e-10 relative to ‖A‖), the Ritz vectors
// are eigenvectors (‖Ax − θx‖ ≤ 1e-9‖A‖), the quadrature weights sum to 1 and
// reproduce q_1ᵀ A² q_1 (degree 2 < 2k).
func TestLanczosFull(t *testing.T) {
	const n = 30
	a := randSym(5, n, nil)
	var es mat.EigenSym
	if !es.Factorize(a, false) {
		t.Fatal("EigenSym failed")
	}
	want := es.Values(nil)
	scale := math.Max(math.Abs(want[0]), math.Abs(want[n-1]))
	start := testutil.RandVec(newRand(6), n)
	r, err := Lanczos{Steps: n, Start: start}.Run(SymOperator{a})
	if err != nil {
		t.Fatal(err)
	}
	if r.Steps() != n {
		t.Fatalf("%d steps, want %d", r.Steps(), n)
	}
	for j, v := range r.Values {
		if math.Abs(v-want[j]) > 1e-10*scale {
			t.Errorf("Ritz value %d: %.15g, eigenvalue %.15g", j, v, want[j])
		}
		var x, ax mat.VecDense
		r.Vector(&x, j)
		ax.MulVec(a, &x)
		ax.AddScaledVec(&ax, -v, &x)
		if res := mat.Norm(&ax, 2); res > 1e-9*scale || math.Abs(mat.Norm(&x, 2)-1) > 1e-10 {
			t.Errorf("Ritz vector %d: residual %g, norm %g", j, res, mat.Norm(&x, 2))
		}
	}
	q1 := mat.VecDenseCopyOf(start)
	q1.ScaleVec(1/mat.Norm(q1, 2), q1)
	var aq mat.VecDense
	aq.MulVec(a, q1)
	wantQuad := mat.Dot(&aq, &aq)
	sum, quad := 0.0, 0.0
	for j, w := range r.Weights {
		sum += w
		quad += w * r.Values[j] * r.Values[j]
	}
	if math.Abs(sum-1) > 1e-12 || math.Abs(quad-wantQuad) > 1e-10*scale*scale {
		t.Errorf("weights sum to %g, quadrature of x² %g, want 1 and %g", sum, quad, wantQuad)
	}
}

// TestLanczosPartial: with k < n steps on a spectrum with a few outlying
// eigenvalues above a bulk — the shape of a network's Hessian (Papyan 2019)
// — the top Ritz values converge to the outliers (within 1e-8 relative),
// every Ritz value has an eigenvalue within its Residual bound, and the
// interior Ritz values are not eigenvalues (some is farther than 1e-3 from
// every eigenvalue): the approximation that must not be exact is not.
func TestLanczosPartial(t *testing.T) {
	const n, k = 200, 25
	lam := make([]float64, n)
	rng := newRand(7)
	for i := range lam {
		lam[i] = rng.Float64() // bulk in [0, 1)
	}
	outliers := []float64{20, 35, 50}
	copy(lam[n-3:], outliers)
	a := randSym(8, n, lam)
	r, err := Lanczos{Steps: k, Rand: newRand(9)}.Run(SymOperator{a})
	if err != nil {
		t.Fatal(err)
	}
	sort.Float64s(lam)
	for i, want := range outliers {
		got := r.Values[k-3+i]
		if math.Abs(got-want) > 1e-8*want {
			t.Errorf("outlier %d: Ritz value %.12g, eigenvalue %g", i, got, want)
		}
	}
	far := 0.0
	for j, v := range r.Values {
		i := sort.SearchFloat64s(lam, v)
		d := math.Inf(1)
		for _, c := range []int{i - 1, i} {
			if c >= 0 && c < n {
				d = math.Min(d, math.Abs(lam[c]-v))
			}
		}
		if d > r.Residual(j)+1e-10 {
			t.Errorf("Ritz value %d (%g): nearest eigenvalue %g away, beyond its bound %g", j, v, d, r.Residual(j))
		}
		far = math.Max(far, d)
	}
	if far < 1e-3 {
		t.Errorf("every Ritz value within %g of an eigenvalue after %d of %d steps; the test cannot fail", far, k, n)
	}
}

// TestLanczosInvariant: on a matrix with 3 distinct eigenvalues the Krylov
// space is invariant after 3 steps; Run stops there and returns those
// eigenvalues (tolerance 1e-10).
func TestLanczosInvariant(t *testing.T) {
	const n = 10
	lam := []float64{1, 1, 1, 1, 4, 4, 4, 9, 9, 9}
	a := randSym(10, n, lam)
	r, err := Lanczos{}.Run(SymOperator{a})
	if err != nil {
		t.Fatal(err)
	}
	if r.Steps() != 3 {
		t.Fatalf("%d steps, want 3 (values %v)", r.Steps(), r.Values)
	}
	for j, want := range []float64{1, 4, 9} {
		if math.Abs(r.Values[j]-want) > 1e-10 {
			t.Errorf("value %d: %.15g, want %g", j, r.Values[j], want)
		}
	}
}

// TestSLQ checks stochastic Lanczos quadrature. With k = n each probe's
// rule is exact for polynomials, so the estimate of tr A is Hutchinson's
// with the same probes (to 1e-9 relative) and that of tr A² likewise
// (z^T A² z); the nodes are eigenvalues of A. With k < n, tr A is still
// exact (degree 1 < 2k), and the smoothed density integrates to 1
// (trapezoid rule, 1e-6).
func TestSLQ(t *testing.T) {
	const n = 24
	a := randSym(11, n, nil)
	var es mat.EigenSym
	es.Factorize(a, false)
	eig := es.Values(nil)
	for _, k := range []int{n, 6} {
		q, err := SLQ{Steps: k, Probes: 5, Rand: newRand(12)}.Run(SymOperator{a})
		if err != nil {
			t.Fatal(err)
		}
		h, err := Hutchinson{Samples: 5, Rand: newRand(12)}.Trace(SymOperator{a})
		if err != nil {
			t.Fatal(err)
		}
		got := q.Trace(func(x float64) float64 { return x })
		if math.Abs(got.Value-h.Value) > 1e-9*math.Abs(h.Value)+1e-9 || math.Abs(got.StdErr-h.StdErr) > 1e-9*h.StdErr {
			t.Errorf("k=%d: SLQ trace %+v, Hutchinson %+v with the same probes", k, got, h)
		}
		if k == n {
			var a2 mat.Dense
			a2.Mul(a, a)
			sq := symOf(&a2)
			h2, _ := Hutchinson{Samples: 5, Rand: newRand(12)}.Trace(SymOperator{sq})
			got2 := q.Trace(func(x float64) float64 { return x * x })
			if math.Abs(got2.Value-h2.Value) > 1e-9*h2.Value {
				t.Errorf("tr A² by SLQ %g, by Hutchinson %g", got2.Value, h2.Value)
			}
			for p, nodes := range q.Nodes {
				for _, v := range nodes {
					i := sort.SearchFloat64s(eig, v)
					d := math.Inf(1)
					for _, c := range []int{i - 1, i} {
						if c >= 0 && c < n {
							d = math.Min(d, math.Abs(eig[c]-v))
						}
					}
					if d > 1e-8 {
						t.Errorf("probe %d: node %g is %g from every eigenvalue", p, v, d)
					}
				}
			}
		}
		lo, hi := q.Range()
		const m = 4001
		ts := make([]float64, m)
		ds := make([]float64, m)
		sigma := (hi - lo) / 50
		for i := range ts {
			ts[i] = lo - 10*sigma + float64(i)*(hi-lo+20*sigma)/(m-1)
		}
		q.Density(ds, ts, sigma)
		integral := 0.0
		for i := 1; i < m; i++ {
			integral += (ds[i] + ds[i-1]) / 2 * (ts[i] - ts[i-1])
		}
		if math.Abs(integral-1) > 1e-6 {
			t.Errorf("k=%d: density integrates to %.9g", k, integral)
		}
	}
}

// symOf returns the symmetric part of a square matrix.
func symOf(m *mat.Dense) *mat.SymDense {
	n, _ := m.Dims()
	s := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		for j := i; j < n; j++ {
			s.SetSym(i, j, (m.At(i, j)+m.At(j, i))/2)
		}
	}
	return s
}

// nanOperator returns NaN in its product after the first calls.
type nanOperator struct {
	SymOperator
	calls, after int
}

func (o *nanOperator) MulVec(dst *mat.VecDense, v mat.Vector) {
	o.SymOperator.MulVec(dst, v)
	if o.calls++; o.calls > o.after {
		dst.SetVec(0, math.NaN())
	}
}

// TestSpectralErrors: a non-finite product is an error naming the
// estimator, a zero start vector ErrLanczosStart, and bad settings panic
// with "curvature: ".
func TestSpectralErrors(t *testing.T) {
	a := randSym(13, 5, nil)
	for name, run := range map[string]func(LinearOperator) error{
		"Hutchinson.Trace":    func(op LinearOperator) error { _, err := Hutchinson{}.Trace(op); return err },
		"Hutchinson.Diagonal": func(op LinearOperator) error { return Hutchinson{}.Diagonal(&mat.VecDense{}, nil, op) },
		"Lanczos.Run":         func(op LinearOperator) error { _, err := Lanczos{}.Run(op); return err },
		"SLQ.Run":             func(op LinearOperator) error { _, err := SLQ{}.Run(op); return err },
	} {
		err := run(&nanOperator{SymOperator: SymOperator{a}, after: 2})
		if err == nil || !strings.Contains(err.Error(), "non-finite") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming it and the non-finite product", name, err)
		}
	}
	if _, err := (Lanczos{Start: mat.NewVecDense(5, nil)}).Run(SymOperator{a}); !errors.Is(err, ErrLanczosStart) {
		t.Errorf("zero start: %v, want ErrLanczosStart", err)
	}
	expectPanic(t, "samples", func() { Hutchinson{Samples: -1}.Trace(SymOperator{a}) }, "Samples = -1")
	expectPanic(t, "steps", func() { Lanczos{Steps: -2}.Run(SymOperator{a}) }, "Steps = -2")
	expectPanic(t, "probes", func() { SLQ{Probes: -3}.Run(SymOperator{a}) }, "Probes = -3")
	expectPanic(t, "start", func() { Lanczos{Start: mat.NewVecDense(4, nil)}.Run(SymOperator{a}) }, "length 4")
	expectPanic(t, "dst", func() { Hutchinson{}.Diagonal(mat.NewVecDense(4, nil), nil, SymOperator{a}) }, "")
	expectPanic(t, "sigma", func() {
		q, _ := SLQ{}.Run(SymOperator{a})
		q.Density(make([]float64, 1), []float64{0}, 0)
	}, "sigma")
}
