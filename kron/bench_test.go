package kron_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/kron"
)

// The benchmarks use the shape of a layer-sized K-FAC block, Ā of size
// (n_in+1)² and G of size n_out², with the gradient in matrix form
// n_out×(n_in+1); 251⊗250 stands for the 1001⊗1000 of a wide layer.
var benchSizes = []struct{ na, nb int }{{101, 100}, {251, 250}}

// benchKron runs bench as the sub-benchmark "na⊗nb" of every size of
// benchSizes, with a generator seeded by seed.
func benchKron(b *testing.B, seed uint64, bench func(b *testing.B, rng *rand.Rand, na, nb int)) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(b *testing.B) { bench(b, newRand(seed), s.na, s.nb) })
	}
}

func BenchmarkEigenKronSolve(b *testing.B) {
	benchKron(b, 20, func(b *testing.B, rng *rand.Rand, na, nb int) {
		var e kron.EigenKron
		if err := e.Factorize(randSPD(rng, na), randSPD(rng, nb)); err != nil {
			b.Fatal(err)
		}
		x := randDense(rng, nb, na)
		dst := mat.NewDense(nb, na, nil)
		for b.Loop() {
			if err := e.Solve(dst, x, 1e-3); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkFactoredTikhonovSolve(b *testing.B) {
	benchKron(b, 21, func(b *testing.B, rng *rand.Rand, na, nb int) {
		var ft kron.FactoredTikhonov
		if err := ft.Factorize(randSPD(rng, na), randSPD(rng, nb), 1e-3); err != nil {
			b.Fatal(err)
		}
		x := randDense(rng, nb, na)
		dst := mat.NewDense(nb, na, nil)
		for b.Loop() {
			ft.Solve(dst, x)
		}
	})
}

func BenchmarkEigenKronFactorize(b *testing.B) {
	benchKron(b, 22, func(b *testing.B, rng *rand.Rand, na, nb int) {
		a, g := randSPD(rng, na), randSPD(rng, nb)
		var e kron.EigenKron
		for b.Loop() {
			if err := e.Factorize(a, g); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkFactoredTikhonovFactorize(b *testing.B) {
	benchKron(b, 23, func(b *testing.B, rng *rand.Rand, na, nb int) {
		a, g := randSPD(rng, na), randSPD(rng, nb)
		var ft kron.FactoredTikhonov
		for b.Loop() {
			if err := ft.Factorize(a, g, 1e-3); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkAugmentedInverseMulRight(b *testing.B) {
	for _, s := range benchSizes {
		nin, nout := s.na-1, s.nb
		b.Run(fmt.Sprintf("in=%d/out=%d", nin, nout), func(b *testing.B) {
			rng := newRand(24)
			second, _, mu, _, _, g := layerStats(rng, 2*nin, nin, nout)
			var ai kron.AugmentedInverse
			if err := ai.Factorize(second, mu, 1e-3); err != nil {
				b.Fatal(err)
			}
			dst := mat.NewDense(nout, nin+1, nil)
			for b.Loop() {
				ai.MulRight(dst, g)
			}
		})
	}
}

func BenchmarkMulMat(b *testing.B) {
	benchKron(b, 25, func(b *testing.B, rng *rand.Rand, na, nb int) {
		a, g := randSPD(rng, na), randSPD(rng, nb)
		x := randDense(rng, nb, na)
		dst := mat.NewDense(nb, na, nil)
		for b.Loop() {
			kron.MulMat(dst, a, g, x)
		}
	})
}
