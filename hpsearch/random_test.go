package hpsearch

import (
	"context"
	"testing"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// TestRandomUniform checks that random search samples uniformly in the
// normalised space: for each coordinate (linear, log over several decades,
// log over less than one), a chi-square test on 20 bins and a
// Kolmogorov–Smirnov test, and a chi-square test on 10×10 bins of the first
// two coordinates, each at significance level 0.01, over a fixed seed.
func TestRandomUniform(t *testing.T) {
	s := mustSpace(t,
		Param{Name: "lin", Min: -2, Max: 5},
		Param{Name: "log", Min: 1e-5, Max: 10, Scale: Log},
		Param{Name: "narrow", Min: 0.3, Max: 0.7, Scale: Log},
	)
	const n = 10000
	zero := func(context.Context, Point) (float64, error) { return 0, nil }
	res, err := Search(context.Background(), s, zero, &Random{}, &Settings{Budget: n, Workers: 2, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.History) != n {
		t.Fatalf("%d trials, want %d", len(res.History), n)
	}
	coords := make([][]float64, s.Dim())
	for _, tr := range res.History {
		for j, u := range tr.Point.Unit() {
			coords[j] = append(coords[j], u)
		}
	}
	chi2p := func(obs []float64) float64 {
		exp := make([]float64, len(obs))
		for k := range exp {
			exp[k] = float64(n) / float64(len(obs))
		}
		return distuv.ChiSquared{K: float64(len(obs) - 1)}.Survival(stat.ChiSquare(obs, exp))
	}
	for j, u := range coords {
		const bins = 20
		obs := make([]float64, bins)
		for _, x := range u {
			obs[min(int(x*bins), bins-1)]++
		}
		if p := chi2p(obs); p < 0.01 {
			t.Errorf("coordinate %d: chi-square p-value %.3g < 0.01", j, p)
		}
		if d := ksUniform(u); d > ksCrit01(n) {
			t.Errorf("coordinate %d: KS statistic %.4f > %.4f", j, d, ksCrit01(n))
		}
	}
	obs := make([]float64, 100)
	for i := range n {
		obs[min(int(coords[0][i]*10), 9)*10+min(int(coords[1][i]*10), 9)]++
	}
	if p := chi2p(obs); p < 0.01 {
		t.Errorf("joint coordinates 0,1: chi-square p-value %.3g < 0.01", p)
	}
}

// TestRandomIndependentOfWorkers checks that random search gives the same
// history with any number of workers.
func TestRandomIndependentOfWorkers(t *testing.T) {
	s := bowlSpace(t)
	var ref []Trial
	for _, w := range []int{1, 2, 5} {
		res, err := Search(context.Background(), s, bowl, &Random{}, &Settings{Budget: 40, Workers: w, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = res.History
			continue
		}
		sameTrials(t, res.History, ref)
	}
}
