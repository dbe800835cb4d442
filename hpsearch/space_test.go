package hpsearch

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

func TestNewSpaceErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params []Param
		want   string
	}{
		{"none", nil, "at least one"},
		{"empty name", []Param{{Min: 0, Max: 1}}, "empty name"},
		{"repeated", []Param{{Name: "a", Max: 1}, {Name: "a", Max: 2}}, "repeated"},
		{"nan", []Param{{Name: "a", Min: math.NaN(), Max: 1}}, "not finite"},
		{"inf", []Param{{Name: "a", Min: 0, Max: math.Inf(1)}}, "not finite"},
		{"min=max", []Param{{Name: "a", Min: 1, Max: 1}}, "less than"},
		{"min>max", []Param{{Name: "a", Min: 2, Max: 1}}, "less than"},
		{"log zero", []Param{{Name: "lr", Min: 0, Max: 1, Scale: Log}}, "log scale needs Min > 0"},
		{"log negative", []Param{{Name: "lr", Min: -1, Max: 1, Scale: Log}}, "log scale needs Min > 0"},
		{"scale", []Param{{Name: "a", Max: 1, Scale: Scale(7)}}, "unknown scale"},
		{"no integer", []Param{{Name: "n", Min: 1.2, Max: 1.8, Integer: true}}, "no integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSpace(tc.params...)
			if err == nil || !strings.HasPrefix(err.Error(), "hpsearch: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPointAccess(t *testing.T) {
	s := mustSpace(t,
		Param{Name: "lr", Min: 1e-4, Max: 1, Scale: Log},
		Param{Name: "batch", Min: 16, Max: 256, Scale: Log, Integer: true},
		Param{Name: "mom", Min: 0, Max: 0.99},
	)
	p, err := s.NewPoint(map[string]float64{"lr": 1e-2, "batch": 64, "mom": 0.9})
	if err != nil {
		t.Fatal(err)
	}
	if p.Get("lr") != 1e-2 || p.Int("batch") != 64 || p.Get("mom") != 0.9 {
		t.Fatalf("point %v", p)
	}
	if got := p.String(); got != "lr=0.01 batch=64 mom=0.9" {
		t.Fatalf("String() = %q", got)
	}
	if m := p.Map(); len(m) != 3 || m["batch"] != 64 {
		t.Fatalf("Map() = %v", m)
	}
	// Normalised coordinates: log10 on log scales, from the extreme
	// integers for Integer parameters.
	want := []float64{0.5, 0.5, 0.9 / 0.99}
	for j, u := range p.Unit() {
		if math.Abs(u-want[j]) > 1e-12 {
			t.Fatalf("Unit() = %v, want %v", p.Unit(), want)
		}
	}
	q := s.FromUnit(p.Unit())
	for j, v := range q.Values() {
		if math.Abs(v-p.Values()[j]) > 1e-12*math.Abs(v) {
			t.Fatalf("FromUnit(Unit()) = %v, want %v", q, p)
		}
	}
	if e := s.FromUnit([]float64{0, 0, 0}); e.Get("lr") != 1e-4 || e.Get("batch") != 16 || e.Get("mom") != 0 {
		t.Fatalf("FromUnit(0) = %v", e)
	}
	if e := s.FromUnit([]float64{1, 1, 1}); e.Get("lr") != 1 || e.Get("batch") != 256 || e.Get("mom") != 0.99 {
		t.Fatalf("FromUnit(1) = %v", e)
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "unknown hyperparameter") {
				t.Fatalf("Get of an unknown name: recovered %v", r)
			}
		}()
		p.Get("nope")
	}()

	for _, bad := range []map[string]float64{
		{"lr": 1e-2, "batch": 64},
		{"lr": 1e-2, "batch": 64, "mom": 0.9, "x": 1},
		{"lr": 2, "batch": 64, "mom": 0.9},
		{"lr": 1e-2, "batch": 64.5, "mom": 0.9},
		{"lr": math.NaN(), "batch": 64, "mom": 0.9},
	} {
		if _, err := s.NewPoint(bad); err == nil {
			t.Errorf("NewPoint(%v) succeeded", bad)
		}
	}
}

// TestIntegerSampling checks with a chi-square test at significance level
// 0.01 that Sample draws the integers of a Linear parameter with equal
// probabilities and those of a Log parameter in proportion to the log-width
// of their rounding cells.
func TestIntegerSampling(t *testing.T) {
	const n = 20000
	for _, tc := range []struct {
		p    Param
		want []float64 // probabilities of Min, Min+1, …
	}{
		{Param{Name: "k", Min: 1, Max: 5, Integer: true}, []float64{0.2, 0.2, 0.2, 0.2, 0.2}},
		{Param{Name: "k", Min: 0.6, Max: 3.3, Scale: Log, Integer: true}, []float64{
			math.Log(3) / math.Log(7), math.Log(5.0/3) / math.Log(7), math.Log(7.0/5) / math.Log(7),
		}},
	} {
		s := mustSpace(t, tc.p)
		obs := make([]float64, len(tc.want))
		lo := math.Ceil(tc.p.Min)
		for i := range n {
			v := s.Sample(trialRand(1, i)).Get("k")
			obs[int(v-lo)]++
		}
		exp := make([]float64, len(tc.want))
		for k, w := range tc.want {
			exp[k] = w * n
		}
		chi2 := stat.ChiSquare(obs, exp)
		if pv := (distuv.ChiSquared{K: float64(len(exp) - 1)}).Survival(chi2); pv < 0.01 {
			t.Errorf("%v: counts %v, expected %v: chi-square p-value %.3g < 0.01", tc.p, obs, exp, pv)
		}
	}
}
