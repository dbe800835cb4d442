package nn

import (
	"math"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
)

// whitenedAutoencoder returns a small whitened sigmoid autoencoder with
// random weights and biases, and a generator of samples in (0, 1) with
// correlated pixels and two constant pixels.
func whitenedAutoencoder(seed uint64) (*Network, func(seed uint64, N int) *mat.Dense) {
	rng := newRand(seed)
	net := NewAutoencoderWhitened([]int{12, 10, 6, 3, 6, 10, 12})
	net.Init(Glorot{Alpha: 6}, rng)
	for _, l := range net.layers {
		for j := 0; j < l.b.Len(); j++ {
			l.b.SetVec(j, 0.3*rng.NormFloat64())
		}
	}
	mix := testutil.RandDense(rng, 12, 12, 0.6)
	sample := func(seed uint64, N int) *mat.Dense {
		Z := testutil.RandDense(newRand(seed), N, 12, 1)
		var X mat.Dense
		X.Mul(Z, mix)
		for i := 0; i < N; i++ {
			r := row(&X, i)
			for j := range r {
				r[j] = sigmoid(r[j])
			}
			r[0], r[11] = 0, 1
		}
		return &X
	}
	return net, sample
}

// TestWhitenKeepsFunction checks that successive refreshes with different
// samples (one over several chunks), regularisations and modes leave the
// network's outputs unchanged to rounding (max abs diff < 1e-10), change U
// and μ, and keep U symmetric.
func TestWhitenKeepsFunction(t *testing.T) {
	net, sample := whitenedAutoencoder(2000)
	X := sample(1, 25)
	f0 := mat.DenseCopyOf(net.Forward(X))
	cases := []struct {
		N   int
		eps float64
	}{{200, 0}, {1100, 1e-3}, {50, 0.5}, {300, 1e-6}}
	for k, c := range cases {
		u0 := mat.DenseCopyOf(net.Layer(2).wh.u)
		if err := net.Whiten(sample(uint64(10+k), c.N), c.eps); err != nil {
			t.Fatal(err)
		}
		if net.BatchSize() != 0 {
			t.Errorf("Whiten did not invalidate the last Forward")
		}
		f := net.Forward(X)
		var d mat.Dense
		d.Sub(f, f0)
		if m := mat.Norm(&d, math.Inf(1)); m > 1e-10 || math.IsNaN(m) {
			t.Errorf("refresh %d (N=%d, eps=%g): outputs moved by %g", k, c.N, c.eps, mat.Norm(&d, math.Inf(1)))
		}
		if mat.Equal(u0, net.Layer(2).wh.u) {
			t.Errorf("refresh %d did not change U", k)
		}
		u := net.Layer(2).wh.u
		if !mat.Equal(u, u.T()) {
			t.Errorf("refresh %d: U is not symmetric", k)
		}
	}
	// The refreshes compose: the function is still the initial one.
	if err := net.Whiten(sample(99, 400), 0); err != nil {
		t.Fatal(err)
	}
	equalApprox(t, "after all refreshes", net.Forward(X), f0, 1e-10, 0)
	// Turning whitening off folds it into W and b.
	for l := 0; l < net.NumLayers(); l++ {
		net.SetWhitened(l, false)
	}
	if !net.Plain() {
		t.Error("not Plain after SetWhitened(l, false) on every layer")
	}
	equalApprox(t, "whitening folded", net.Forward(X), f0, 1e-10, 0)
	// A network without whitened layers is left alone.
	before := net.Params(nil)
	if err := net.Whiten(X, 0); err != nil || !sameBits(before, net.Params(nil)) {
		t.Errorf("Whiten on a plain network: %v", err)
	}
}

// TestWhitenStatistics checks the statistics of the whitened inputs of the
// sample after a refresh: mean 0 (|.| < 1e-12), covariance U C U with C the
// covariance of the raw inputs (tolerance 1e-10), U symmetric with
// U (C + εI) U = I and ε = eps·tr(C)/n_in (tolerance 1e-9), so the
// covariance is C (C + εI)^{-1}; with a tiny eps and full-rank inputs (the
// first layer's, Gaussian) the covariance is I to 1e-6.
func TestWhitenStatistics(t *testing.T) {
	for _, c := range []struct {
		eps    float64
		const2 bool // the sample has two constant pixels
	}{{0, true}, {0.3, true}, {1e-10, false}} {
		net, sample := whitenedAutoencoder(2100)
		S := sample(5, 400)
		if !c.const2 {
			S = testutil.RandDense(newRand(6), 400, 12, 1)
		}
		if err := net.Whiten(S, c.eps); err != nil {
			t.Fatal(err)
		}
		eps := c.eps
		if eps == 0 {
			eps = DefaultWhitenEps
		}
		net.Forward(S)
		for l, ly := range net.layers {
			if !c.const2 && l > 0 {
				// Above the input, the units are nearly rank-deficient
				// (10 sigmoids of 6): no use whitening them with ε ≈ 0.
				break
			}
			N, in := ly.in.Dims()
			he := ly.rec.Input
			if he != ly.wh.he {
				t.Fatalf("layer %d: record Input is not the whitened input", l)
			}
			mean := make([]float64, in)
			for j := range mean {
				mean[j] = floats.Sum(mat.Col(nil, j, he)) / float64(N)
				if math.Abs(mean[j]) > 1e-12 {
					t.Errorf("eps %g layer %d: whitened mean[%d] = %g", c.eps, l, j, mean[j])
				}
			}
			cov := func(h *mat.Dense) *mat.Dense {
				ctr := mat.DenseCopyOf(h)
				for j := 0; j < in; j++ {
					m := floats.Sum(mat.Col(nil, j, h)) / float64(N)
					for i := 0; i < N; i++ {
						ctr.Set(i, j, ctr.At(i, j)-m)
					}
				}
				var c mat.Dense
				c.Mul(ctr.T(), ctr)
				c.Scale(1/float64(N), &c)
				return &c
			}
			C, K := cov(ly.in), cov(he)
			U := ly.wh.u
			var ucu, tmp mat.Dense
			tmp.Mul(C, U)
			ucu.Mul(U, &tmp)
			equalApprox(t, "whitened covariance = U C U", K, &ucu, 1e-10, 1e-9)
			reg := mat.DenseCopyOf(C)
			e := eps * mat.Trace(C) / float64(in)
			for j := 0; j < in; j++ {
				reg.Set(j, j, reg.At(j, j)+e)
			}
			var id mat.Dense
			tmp.Mul(reg, U)
			id.Mul(U, &tmp)
			equalApprox(t, "U (C+εI) U = I", &id, eye(in), 1e-9, 0)
			if !c.const2 {
				equalApprox(t, "whitened covariance ≈ I", K, eye(in), 1e-6, 0)
			}
		}
	}
}

func eye(n int) *mat.Dense {
	m := mat.NewDense(n, n, nil)
	for i := 0; i < n; i++ {
		m.Set(i, i, 1)
	}
	return m
}

// TestWhitenErrors checks that a sample with a NaN gives an error and
// leaves the network unchanged, and the panics of bad arguments.
func TestWhitenErrors(t *testing.T) {
	net, sample := whitenedAutoencoder(2200)
	if err := net.Whiten(sample(1, 100), 0); err != nil {
		t.Fatal(err)
	}
	theta := net.Params(nil)
	u := mat.DenseCopyOf(net.Layer(1).wh.u)
	S := sample(2, 100)
	S.Set(7, 3, math.NaN())
	err := net.Whiten(S, 0)
	if err == nil || !strings.HasPrefix(err.Error(), "nn: Whiten: layer 0: non-finite") {
		t.Errorf("NaN in the sample: error %v", err)
	}
	if !sameBits(theta, net.Params(nil)) || !mat.Equal(u, net.Layer(1).wh.u) {
		t.Error("failed Whiten changed the network")
	}
	expectPanic(t, "width", func() { net.Whiten(mat.NewDense(3, 5, nil), 0) }, "3×5")
	expectPanic(t, "eps", func() { net.Whiten(sample(3, 10), -1) }, "eps")
	expectPanic(t, "SetWhitened range", func() { net.SetWhitened(9, true) }, "out of range")
	if U, mu := New([]int{2, 2}, []Activation{Tanh{}}).Layer(0).Whitening(); U != nil || mu != nil {
		t.Error("Whitening of a plain layer is not nil")
	}
}
