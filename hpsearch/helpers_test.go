package hpsearch

import (
	"context"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// mustSpace returns the space of params or fails the test.
func mustSpace(t testing.TB, params ...Param) *Space {
	t.Helper()
	s, err := NewSpace(params...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seqSource is a rand.Source whose Float64 values are the given floats, which
// must be multiples of 2⁻⁵³ in [0, 1). It fails the test when exhausted.
type seqSource struct {
	t  testing.TB
	fs []float64
	i  int
}

func (s *seqSource) Uint64() uint64 {
	if s.i >= len(s.fs) {
		s.t.Fatalf("seqSource exhausted after %d values", s.i)
	}
	f := s.fs[s.i]
	s.i++
	return uint64(f * (1 << 53))
}

func seqRand(t testing.TB, fs ...float64) (*rand.Rand, *seqSource) {
	src := &seqSource{t: t, fs: fs}
	return rand.New(src), src
}

// ksUniform returns the Kolmogorov–Smirnov statistic of xs against U(0, 1).
func ksUniform(xs []float64) float64 {
	return ksAgainst(xs, func(x float64) float64 { return x })
}

// ksAgainst returns the Kolmogorov–Smirnov statistic of xs against cdf.
func ksAgainst(xs []float64, cdf func(float64) float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := float64(len(s))
	var d float64
	for i, x := range s {
		f := cdf(x)
		d = math.Max(d, math.Max(float64(i+1)/n-f, f-float64(i)/n))
	}
	return d
}

// ksCrit01 is the asymptotic critical value of the one-sample
// Kolmogorov–Smirnov statistic at significance level 0.01 for n samples.
func ksCrit01(n int) float64 { return 1.6276 / math.Sqrt(float64(n)) }

// bowl is a shifted quadratic bowl on lr (log scale) and m (linear), with
// minimum 0 at lr = 10^−2.5, m = 0.8.
func bowl(_ context.Context, p Point) (float64, error) {
	u := math.Log10(p.Get("lr")) + 2.5
	v := p.Get("m") - 0.8
	return u*u + 4*v*v, nil
}

func bowlSpace(t testing.TB) *Space {
	return mustSpace(t,
		Param{Name: "lr", Min: 1e-4, Max: 1, Scale: Log},
		Param{Name: "m", Min: 0, Max: 1},
	)
}

// rosenbrock is Rosenbrock's valley in the log10 of a and b, with minimum 0
// at a = b = 10.
func rosenbrock(_ context.Context, p Point) (float64, error) {
	u := math.Log10(p.Get("a"))
	v := math.Log10(p.Get("b"))
	return (1-u)*(1-u) + 100*(v-u*u)*(v-u*u), nil
}

func rosenbrockSpace(t testing.TB) *Space {
	return mustSpace(t,
		Param{Name: "a", Min: 1e-2, Max: 1e2, Scale: Log},
		Param{Name: "b", Min: 1e-2, Max: 1e2, Scale: Log},
	)
}

// sameTrials compares two histories: indices, points, values and errors
// (durations differ from run to run).
func sameTrials(t *testing.T, got, want []Trial) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("history has %d trials, want %d", len(got), len(want))
	}
	for k := range got {
		g, w := got[k], want[k]
		if g.Index != w.Index {
			t.Fatalf("trial %d: index %d, want %d", k, g.Index, w.Index)
		}
		gv, wv := g.Point.Values(), w.Point.Values()
		for j := range gv {
			if gv[j] != wv[j] {
				t.Fatalf("trial %d: point %v, want %v", k, g.Point, w.Point)
			}
		}
		if g.Failed() != w.Failed() {
			t.Fatalf("trial %d: failed %v (%v), want %v (%v)", k, g.Failed(), g.Err, w.Failed(), w.Err)
		}
		if g.Failed() {
			if g.Err.Error() != w.Err.Error() {
				t.Fatalf("trial %d: error %q, want %q", k, g.Err, w.Err)
			}
		} else if g.Value != w.Value {
			t.Fatalf("trial %d: value %v, want %v", k, g.Value, w.Value)
		}
	}
}
