package datasets

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/floats/scalar"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

func TestLinearRegression(t *testing.T) {
	for _, tc := range []struct {
		n, d, k int
		noise   float64
	}{
		{50, 3, 1, 0},
		{40, 5, 3, 0},
		{4000, 4, 2, 0.5},
	} {
		x, y, w, b := LinearRegression(rand.New(rand.NewPCG(1, uint64(tc.d))), tc.n, tc.d, tc.k, tc.noise)
		x2, y2, _, _ := LinearRegression(rand.New(rand.NewPCG(1, uint64(tc.d))), tc.n, tc.d, tc.k, tc.noise)
		if !mat.Equal(x, x2) || !mat.Equal(y, y2) {
			t.Errorf("%v: same seed, different data", tc)
		}
		if r, c := y.Dims(); r != tc.n || c != tc.k || w.RawMatrix().Rows != tc.k || w.RawMatrix().Cols != tc.d || b.Len() != tc.k {
			t.Fatalf("%v: shapes y %d×%d, w %v, b %d", tc, r, c, w.RawMatrix(), b.Len())
		}
		// Least squares on [x 1] recovers [wᵀ; bᵀ], exactly without noise.
		xa := mat.NewDense(tc.n, tc.d+1, nil)
		xa.Augment(x, onesColumn(tc.n))
		var theta mat.Dense
		if err := theta.Solve(xa, y); err != nil {
			t.Fatal(err)
		}
		want := mat.NewDense(tc.d+1, tc.k, nil)
		want.Stack(w.T(), mat.NewDense(1, tc.k, mat.Col(nil, 0, b)))
		tol := 1e-10 + 4*tc.noise/math.Sqrt(float64(tc.n))
		if !mat.EqualApprox(&theta, want, tol) {
			t.Errorf("%v: fit\n%v\nwant\n%v", tc, mat.Formatted(&theta), mat.Formatted(want))
		}
		if tc.noise > 0 {
			var res mat.Dense
			res.Mul(xa, &theta)
			res.Sub(y, &res)
			sd := stat.StdDev(res.RawMatrix().Data, nil)
			if !scalar.EqualWithinRel(sd, tc.noise, 0.05) {
				t.Errorf("%v: residual std %v, want %v", tc, sd, tc.noise)
			}
		}
	}
}

func onesColumn(n int) *mat.Dense {
	o := mat.NewDense(n, 1, nil)
	for i := range n {
		o.Set(i, 0, 1)
	}
	return o
}

func TestBlobs(t *testing.T) {
	for _, tc := range []struct {
		n, d, classes int
	}{
		{200, 2, 2},
		{300, 5, 3},
		{1000, 10, 10},
	} {
		x, labels, centers := Blobs(rand.New(rand.NewPCG(2, 3)), tc.n, tc.d, tc.classes, 5, 0.3)
		if r, c := x.Dims(); r != tc.n || c != tc.d || len(labels) != tc.n {
			t.Fatalf("%v: x %d×%d, %d labels", tc, r, c, len(labels))
		}
		if r, c := centers.Dims(); r != tc.classes || c != tc.d {
			t.Fatalf("%v: centers %d×%d", tc, r, c)
		}
		count := make([]int, tc.classes)
		wrong := 0
		for i, l := range labels {
			count[l]++
			// The nearest center is the point's own at this separation.
			best, bestDist := -1, math.Inf(1)
			for c := range tc.classes {
				var diff mat.VecDense
				diff.SubVec(x.RowView(i), centers.RowView(c))
				if d := mat.Norm(&diff, 2); d < bestDist {
					best, bestDist = c, d
				}
			}
			if best != l {
				wrong++
			}
		}
		for c, k := range count {
			if k < tc.n/tc.classes || k > tc.n/tc.classes+1 {
				t.Errorf("%v: class %d has %d points", tc, c, k)
			}
		}
		if wrong > tc.n/100 {
			t.Errorf("%v: %d points closer to another center", tc, wrong)
		}
	}
}

func TestLowRankImages(t *testing.T) {
	const n, d, rank = 60, 49, 4
	x := LowRankImages(rand.New(rand.NewPCG(4, 5)), n, d, rank)
	if !mat.Equal(x, LowRankImages(rand.New(rand.NewPCG(4, 5)), n, d, rank)) {
		t.Error("same seed, different data")
	}
	logit := mat.NewDense(n, d, nil)
	binary := 0
	for i, v := range x.RawMatrix().Data {
		if !(v > 0 && v < 1) {
			t.Fatalf("pixel %v outside (0, 1)", v)
		}
		if v < 0.1 || v > 0.9 {
			binary++
		}
		logit.RawMatrix().Data[i] = math.Log(v / (1 - v))
	}
	if frac := float64(binary) / float64(n*d); frac < 0.5 {
		t.Errorf("only %.2f of the pixels are near 0 or 1", frac)
	}
	var svd mat.SVD
	if !svd.Factorize(logit, mat.SVDNone) {
		t.Fatal("SVD failed")
	}
	s := svd.Values(nil)
	if s[rank-1] < 1e-3*s[0] || s[rank] > 1e-6*s[0] {
		t.Errorf("singular values of the logits %v, want rank %d", s[:rank+2], rank)
	}
}

func TestOneHot(t *testing.T) {
	y := OneHot([]int{2, 0, 1, 2}, 3)
	want := mat.NewDense(4, 3, []float64{0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1})
	if !mat.Equal(y, want) {
		t.Errorf("got\n%v", mat.Formatted(y))
	}
	defer func() {
		if r := recover(); r == nil {
			t.Error("no panic for a label out of range")
		}
	}()
	OneHot([]int{3}, 3)
}

func TestSyntheticPanics(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for name, f := range map[string]func(){
		"regression n":     func() { LinearRegression(rng, 0, 2, 1, 0) },
		"regression noise": func() { LinearRegression(rng, 3, 2, 1, -1) },
		"blobs classes":    func() { Blobs(rng, 3, 2, 0, 1, 1) },
		"blobs std":        func() { Blobs(rng, 3, 2, 2, 1, math.NaN()) },
		"low rank":         func() { LowRankImages(rng, 3, 2, 0) },
	} {
		func() {
			defer func() {
				if s, ok := recover().(string); !ok || s[:10] != "datasets: " {
					t.Errorf("%s: no datasets: panic", name)
				}
			}()
			f()
		}()
	}
}
