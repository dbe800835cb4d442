package main

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// meanSD returns the mean and the sample standard deviation (divided by
// n−1) of x: NaN, NaN for no value and mean, NaN for one.
func meanSD(x []float64) (mean, sd float64) {
	n := float64(len(x))
	if len(x) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, v := range x {
		mean += v
	}
	mean /= n
	if len(x) == 1 {
		return mean, math.NaN()
	}
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / (n - 1))
}

// welch is Welch's unequal-variance t-test of the mean of a against the
// mean of b.
type welch struct {
	t, df float64
	// pLess is the one-sided p-value of the alternative mean(a) < mean(b):
	// the probability under equal means of a statistic at most t.
	pLess float64
}

// welchTest returns Welch's t-test of mean(a) < mean(b), with
//
//	t = (ā − b̄) / √(s_a²/n_a + s_b²/n_b)
//
// and the Welch–Satterthwaite degrees of freedom. It reports false when a
// or b has fewer than 2 values or both have zero variance.
func welchTest(a, b []float64) (welch, bool) {
	if len(a) < 2 || len(b) < 2 {
		return welch{}, false
	}
	ma, sa := meanSD(a)
	mb, sb := meanSD(b)
	va, vb := sa*sa/float64(len(a)), sb*sb/float64(len(b))
	if va+vb == 0 {
		return welch{}, false
	}
	t := (ma - mb) / math.Sqrt(va+vb)
	df := (va + vb) * (va + vb) / (va*va/float64(len(a)-1) + vb*vb/float64(len(b)-1))
	p := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.CDF(t)
	return welch{t: t, df: df, pLess: p}, true
}

// quantile returns the q-quantile of the sorted values x by linear
// interpolation between order statistics; NaN for no value.
func quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	h := q * float64(n-1)
	i := int(math.Floor(h))
	if i >= n-1 {
		return sorted[n-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}
