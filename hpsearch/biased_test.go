package hpsearch

import (
	"context"
	"errors"
	"math"
	"testing"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

func TestAcceptProbability(t *testing.T) {
	for _, tc := range []struct{ est, cmin, cmax, want float64 }{
		{est: 0, cmin: 0, cmax: 4, want: 1},
		{est: 4, cmin: 0, cmax: 4, want: 0},
		{est: 1, cmin: 0, cmax: 4, want: 0.75},
		{est: -3, cmin: -5, cmax: 5, want: 0.8},
		{est: -6, cmin: -5, cmax: 5, want: 1}, // below the best: clamped
		{est: 7, cmin: -5, cmax: 5, want: 0},  // above the worst: clamped
		{est: 2, cmin: 2, cmax: 2, want: 1},   // no spread
		{est: math.NaN(), cmin: 0, cmax: 1, want: 1},
	} {
		if got := AcceptProbability(tc.est, tc.cmin, tc.cmax); got != tc.want {
			t.Errorf("AcceptProbability(%v, %v, %v) = %v, want %v", tc.est, tc.cmin, tc.cmax, got, tc.want)
		}
	}
}

// stubModel estimates cost scale·x₀ and counts its calls.
type stubModel struct {
	scale float64
	calls int
}

func (m *stubModel) Estimate(_ []Observation, x []float64) float64 {
	m.calls++
	return m.scale * x[0]
}

// unitTrials returns successful trials at the given 1-D coordinates and
// values; a NaN value makes a failed trial.
func unitTrials(s *Space, us, vs []float64) []Trial {
	h := make([]Trial, len(us))
	for i := range us {
		h[i] = Trial{Index: i, Point: s.FromUnit([]float64{us[i]}), Value: vs[i]}
		if math.IsNaN(vs[i]) {
			h[i].Err = errors.New("failed")
		}
	}
	return h
}

// TestBiasedAcceptanceExact replays algorithm 1 with a fixed random sequence:
// each candidate takes one value (a 1-D space on [0, 1], so the value is the
// coordinate) and is kept when the next value x is below
// p = (c_max − c_est)/(c_max − c_min).
func TestBiasedAcceptanceExact(t *testing.T) {
	s := mustSpace(t, Param{Name: "x", Min: 0, Max: 1})
	// History with c_min = 0 and c_max = 4; the stub estimates 4·x, so
	// p = 1 − x.
	hist := unitTrials(s, []float64{0.5, 0.25}, []float64{4, 0})
	for _, tc := range []struct {
		name    string
		maxRej  int
		seq     []float64 // candidate, x, candidate, x, …
		want    float64
		queries int
	}{
		{"first kept", 0, []float64{0.25, 0.5}, 0.25, 1},
		{"x = p is rejected", 0, []float64{0.75, 0.25, 0.5, 0.5, 0.125, 0.5}, 0.125, 3},
		{"p = 1 keeps", 0, []float64{0, 0.9990234375}, 0, 1},
		{"x = 0 keeps p > 0", 0, []float64{0.9375, 0}, 0.9375, 1},
		{"fallback to lowest estimate", 3, []float64{0.75, 0.5, 0.625, 0.5, 0.875, 0.5}, 0.625, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &stubModel{scale: 4}
			b := &Biased{Model: m, MaxRejections: tc.maxRej}
			if _, err := b.Init(s, 10); err != nil {
				t.Fatal(err)
			}
			rng, src := seqRand(t, tc.seq...)
			p := b.Propose(2, hist, rng)
			if got := p.Get("x"); got != tc.want {
				t.Errorf("proposed %v, want %v", got, tc.want)
			}
			if m.calls != tc.queries || src.i != len(tc.seq) {
				t.Errorf("%d estimates and %d random values used, want %d and %d", m.calls, src.i, tc.queries, len(tc.seq))
			}
		})
	}

	// With the thesis's 1-nearest-neighbour model. Best result at 0.1, worst
	// (10) at 0.9, and a failed experiment at 0.5, which counts as 10.
	hist = unitTrials(s, []float64{0.1, 0.9, 0.5}, []float64{0, 10, math.NaN()})
	b := &Biased{}
	b.Init(s, 10)
	// 0.4375 is nearest the failure: p = 0, rejected even by x = 0; 0.8125
	// is nearest the worst: p = 0, rejected; 0.1875 is nearest the best:
	// p = 1, kept by x = 0.99….
	rng, src := seqRand(t, 0.4375, 0, 0.8125, 0, 0.1875, 0.9990234375)
	if got := b.Propose(3, hist, rng).Get("x"); got != 0.1875 || src.i != 6 {
		t.Errorf("1-NN: proposed %v after %d random values, want 0.1875 after 6", got, src.i)
	}

	// Before any successful result, and when all results are equal, the
	// first candidate is kept without an acceptance draw.
	for _, h := range [][]Trial{
		nil,
		unitTrials(s, []float64{0.5}, []float64{math.NaN()}),
		unitTrials(s, []float64{0.5, 0.75}, []float64{3, 3}),
	} {
		m := &stubModel{scale: 4}
		b := &Biased{Model: m}
		b.Init(s, 10)
		rng, src := seqRand(t, 0.875)
		if got := b.Propose(len(h), h, rng).Get("x"); got != 0.875 || src.i != 1 || m.calls != 0 {
			t.Errorf("history %v: proposed %v with %d draws and %d estimates, want 0.875, 1, 0", h, got, src.i, m.calls)
		}
	}
}

func TestObservationsFailedTakeWorst(t *testing.T) {
	s := mustSpace(t, Param{Name: "x", Min: 0, Max: 1})
	obs, cmin, cmax, ok := Observations(unitTrials(s, []float64{0, 0.5, 1}, []float64{2, math.NaN(), 7}))
	if !ok || cmin != 2 || cmax != 7 || len(obs) != 3 || obs[1].Y != 7 || obs[1].X[0] != 0.5 {
		t.Fatalf("Observations = %v, %v, %v, %v", obs, cmin, cmax, ok)
	}
}

// TestBiasedAcceptanceRate checks the rejection loop statistically. With
// c_min = 0, c_max = 1 and an estimate equal to the candidate's coordinate x,
// p = 1 − x, so (1) the number of candidates per proposal is geometric with
// mean 1/∫(1−x)dx = 2, checked by a z-test on the total at 4 standard
// deviations (significance level 6·10⁻⁵), and (2) accepted points have
// density 2(1−x), cdf 1−(1−x)², checked by a Kolmogorov–Smirnov test at
// significance level 0.01.
func TestBiasedAcceptanceRate(t *testing.T) {
	s := mustSpace(t, Param{Name: "x", Min: 0, Max: 1})
	hist := unitTrials(s, []float64{0.3, 0.6}, []float64{0, 1})
	m := &stubModel{scale: 1}
	b := &Biased{Model: m}
	b.Init(s, 0)
	const n = 5000
	xs := make([]float64, n)
	for i := range n {
		xs[i] = b.Propose(i, hist, trialRand(11, i)).Get("x")
	}
	// Geometric(p = ½) counts: mean 2, variance (1−p)/p² = 2.
	if z := (float64(m.calls) - 2*n) / math.Sqrt(2*n); math.Abs(z) > 4 {
		t.Errorf("%d candidates for %d proposals: acceptance rate %.4f, z = %.2f", m.calls, n, float64(n)/float64(m.calls), z)
	}
	if d := ksAgainst(xs, func(x float64) float64 { return 1 - (1-x)*(1-x) }); d > ksCrit01(n) {
		t.Errorf("accepted points: KS statistic %.4f > %.4f", d, ksCrit01(n))
	}
}

// TestBiasedBeatsRandom runs 500 searches of 50 experiments with each of
// random and biased random search on two 2-D functions with minimum 0 — a
// shifted quadratic bowl (log × linear) and Rosenbrock's valley in log space
// — and checks with Welch's t-test at one-sided significance level 0.001
// that the mean best value of biased search is lower.
func TestBiasedBeatsRandom(t *testing.T) {
	const searches, budget = 500, 50
	for _, tc := range []struct {
		name  string
		space *Space
		f     Objective
	}{
		{"bowl", bowlSpace(t), bowl},
		{"rosenbrock", rosenbrockSpace(t), rosenbrock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bests := func(mk func() Method) []float64 {
				v := make([]float64, searches)
				for i := range v {
					res, err := Search(context.Background(), tc.space, tc.f, mk(), &Settings{Budget: budget, Workers: 1, Seed: uint64(i)})
					if err != nil {
						t.Fatal(err)
					}
					_, v[i], _ = res.Best()
				}
				return v
			}
			rnd := bests(func() Method { return &Random{} })
			bia := bests(func() Method { return &Biased{} })
			mr, sr := stat.MeanStdDev(rnd, nil)
			mb, sb := stat.MeanStdDev(bia, nil)
			vr, vb := sr*sr/searches, sb*sb/searches
			tstat := (mr - mb) / math.Sqrt(vr+vb)
			dof := (vr + vb) * (vr + vb) / (vr*vr/(searches-1) + vb*vb/(searches-1))
			pv := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: dof}.Survival(tstat)
			t.Logf("best of %d: random %.4g ± %.4g, biased %.4g ± %.4g (mean ± sd over %d searches); t = %.2f, p = %.2g",
				budget, mr, sr, mb, sb, searches, tstat, pv)
			if pv > 0.001 {
				t.Errorf("biased search is not better than random search: t = %.2f, p = %.3g", tstat, pv)
			}
		})
	}
}
