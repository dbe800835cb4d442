package nn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpNonPos compares the fast exponential with math.Exp over the whole
// range it serves, including the reduction boundaries and the fallback.
func TestExpNonPos(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	xs := []float64{0, -0.0, -1e-300, -math.Ln2 / 2, -math.Ln2, -1, -10, -700, -700.0001, -745, -746, math.Inf(-1)}
	for i := 0; i < 200000; i++ {
		xs = append(xs, -rng.Float64()*720, -rng.ExpFloat64())
	}
	for _, x := range xs {
		got, want := expNonPos(x), math.Exp(x)
		if want == 0 {
			if got != 0 {
				t.Fatalf("expNonPos(%v) = %v, want 0", x, got)
			}
			continue
		}
		if rel := math.Abs(got-want) / want; rel > 1e-15 {
			t.Fatalf("expNonPos(%v) = %v, math.Exp = %v, relative error %.3g > 1e-15", x, got, want, rel)
		}
	}
	if !math.IsNaN(expNonPos(math.NaN())) {
		t.Error("expNonPos(NaN) is not NaN")
	}
}

// expBenchInputs returns the arguments of the exp benchmarks: 4096 values
// from 0 down to −20.475.
func expBenchInputs() []float64 {
	x := make([]float64, 4096)
	for i := range x {
		x[i] = -float64(i) / 200
	}
	return x
}

func BenchmarkExpNonPos(b *testing.B) {
	x, s := expBenchInputs(), 0.0
	for b.Loop() {
		for _, v := range x {
			s += expNonPos(v)
		}
	}
	_ = s
}

func BenchmarkMathExp(b *testing.B) {
	x, s := expBenchInputs(), 0.0
	for b.Loop() {
		for _, v := range x {
			s += math.Exp(v)
		}
	}
	_ = s
}
