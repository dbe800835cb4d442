package kron_test

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/kron"
)

// The benchmarks use the shape of a layer-sized K-FAC block, Ā of size
// (n_in+1)² and G of size n_out², with the gradient in matrix form
// n_out×(n_in+1); 251⊗250 stands for the 1001⊗1000 of a wide layer.
var benchSizes = []struct{ na, nb int }{{101, 100}, {251, 250}}

func BenchmarkEigenKronSolve(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(b *testing.B) {
			rng := newRand(20)
			var e kron.EigenKron
			if err := e.Factorize(randSPD(rng, s.na), randSPD(rng, s.nb)); err != nil {
				b.Fatal(err)
			}
			x := randDense(rng, s.nb, s.na)
			dst := mat.NewDense(s.nb, s.na, nil)
			for b.Loop() {
				if err := e.Solve(dst, x, 1e-3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFactoredTikhonovSolve(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(b *testing.B) {
			rng := newRand(21)
			var ft kron.FactoredTikhonov
			if err := ft.Factorize(randSPD(rng, s.na), randSPD(rng, s.nb), 1e-3); err != nil {
				b.Fatal(err)
			}
			x := randDense(rng, s.nb, s.na)
			dst := mat.NewDense(s.nb, s.na, nil)
			for b.Loop() {
				ft.Solve(dst, x)
			}
		})
	}
}

func BenchmarkEigenKronFactorize(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(b *testing.B) {
			rng := newRand(22)
			a, g := randSPD(rng, s.na), randSPD(rng, s.nb)
			var e kron.EigenKron
			for b.Loop() {
				if err := e.Factorize(a, g); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFactoredTikhonovFactorize(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(b *testing.B) {
			rng := newRand(23)
			a, g := randSPD(rng, s.na), randSPD(rng, s.nb)
			var ft kron.FactoredTikhonov
			for b.Loop() {
				if err := ft.Factorize(a, g, 1e-3); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("%d⊗%d", s.na, s.nb), func(b *testing.B) {
			rng := newRand(25)
			a, g := randSPD(rng, s.na), randSPD(rng, s.nb)
			x := randDense(rng, s.nb, s.na)
			dst := mat.NewDense(s.nb, s.na, nil)
			for b.Loop() {
				kron.MulMat(dst, a, g, x)
			}
		})
	}
}
