package nn

import (
	"math"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
)

// TestInitVariance checks the weight variance of Glorot and He against
// α/(n_in+n_out) and α/n_in on a 300×500 layer (150 000 draws: the relative
// standard error of the sample variance is ≈ 0.3% for uniform and ≈ 0.4%
// for Gaussian weights; tolerance 2%), the Glorot support, zero biases, and
// reproducibility from the seed.
func TestInitVariance(t *testing.T) {
	const out, in = 300, 500
	cases := []struct {
		name  string
		init  Initializer
		want  float64
		bound float64 // |w| ≤ bound, 0 for none
	}{
		{"Glorot default", Glorot{}, 2.0 / (in + out), math.Sqrt(6.0 / (in + out))},
		{"Glorot α=1", Glorot{Alpha: 1}, 1.0 / (in + out), math.Sqrt(3.0 / (in + out))},
		{"He default", He{}, 2.0 / in, 0},
		{"He α=0.5", He{Alpha: 0.5}, 0.5 / in, 0},
	}
	for ci, c := range cases {
		W := mat.NewDense(out, in, nil)
		b := mat.NewVecDense(out, nil)
		b.SetVec(0, 1)
		c.init.Init(W, b, newRand(uint64(ci)))
		data := W.RawMatrix().Data
		mean, variance := stat.MeanVariance(data, nil)
		if math.Abs(variance/c.want-1) > 0.02 || math.Abs(mean) > 5*math.Sqrt(c.want/float64(len(data))) {
			t.Errorf("%s: mean %v variance %v, want 0 and %v", c.name, mean, variance, c.want)
		}
		if c.bound > 0 {
			for _, v := range data {
				if math.Abs(v) > c.bound {
					t.Fatalf("%s: weight %v outside ±%v", c.name, v, c.bound)
				}
			}
		}
		if b.Norm(2) != 0 {
			t.Errorf("%s: biases not zero", c.name)
		}
		W2 := mat.NewDense(out, in, nil)
		c.init.Init(W2, mat.NewVecDense(out, nil), newRand(uint64(ci)))
		if !mat.Equal(W, W2) {
			t.Errorf("%s: not reproducible from the seed", c.name)
		}
	}
}

func TestSparseInit(t *testing.T) {
	cases := []struct {
		init        Sparse
		in, nz      int
		sd          float64
		out         int
		checkMoment bool
	}{
		{Sparse{}, 784, 15, 1, 400, true},
		{Sparse{Count: 5, Std: 0.1}, 40, 5, 0.1, 400, true},
		{Sparse{}, 10, 10, 1, 3, false}, // fewer inputs than Count: dense
	}
	for ci, c := range cases {
		W := mat.NewDense(c.out, c.in, nil)
		b := mat.NewVecDense(c.out, nil)
		b.SetVec(0, 1)
		c.init.Init(W, b, newRand(uint64(ci)))
		var nonzero []float64
		cols := make([]int, c.in)
		for i := 0; i < c.out; i++ {
			cnt := 0
			for j := 0; j < c.in; j++ {
				if v := W.At(i, j); v != 0 {
					cnt++
					cols[j]++
					nonzero = append(nonzero, v)
				}
			}
			if cnt != c.nz {
				t.Fatalf("case %d: unit %d has %d non-zero weights, want %d", ci, i, cnt, c.nz)
			}
		}
		if b.Norm(2) != 0 {
			t.Errorf("case %d: biases not zero", ci)
		}
		if c.checkMoment {
			// 6000 or 2000 draws: relative standard error of the variance ≈ 2–3%.
			_, v := stat.MeanVariance(nonzero, nil)
			if math.Abs(v/(c.sd*c.sd)-1) > 0.1 {
				t.Errorf("case %d: non-zero weight variance %v, want %v", ci, v, c.sd*c.sd)
			}
			// The chosen inputs are spread: every input is used at least once
			// when out·nz ≫ in·log(in).
			if c.in == 40 {
				for j, n := range cols {
					if n == 0 {
						t.Errorf("case %d: input %d never chosen", ci, j)
					}
				}
			}
		}
	}
}

func TestNetworkInitSeed(t *testing.T) {
	a := New([]int{5, 4, 3}, []Activation{Tanh{}, Identity{}})
	b := New([]int{5, 4, 3}, []Activation{Tanh{}, Identity{}})
	a.Init(Glorot{}, newRand(9))
	b.Init(Glorot{}, newRand(9))
	pa, pb := a.Params(nil), b.Params(nil)
	for i := range pa {
		if pa[i] != pb[i] {
			t.Fatal("same seed, different networks")
		}
	}
	if mat.Equal(a.Layer(0).W(), mat.NewDense(4, 5, nil)) || mat.Equal(a.Layer(1).W(), mat.NewDense(3, 4, nil)) {
		t.Error("a layer was left zero")
	}
}
