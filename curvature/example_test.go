package curvature_test

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/curvature"
)

// A curvature block from a layer's record alone: K-FAC's Ā ⊗ G against the
// exact per-layer block of eq. 3.3.2 (DenseBlock). With one example the
// Kronecker factorization is exact (thesis §3.5.1); with several it is an
// approximation.
func ExampleKFACBlock() {
	rng := rand.New(rand.NewPCG(1, 2))
	randDense := func(r, c int) *mat.Dense {
		m := mat.NewDense(r, c, nil)
		m.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, m)
		return m
	}
	for _, n := range []int{1, 8} {
		l := &secondorder.Layer{
			W:     mat.NewDense(2, 3, nil),
			B:     mat.NewVecDense(2, nil),
			Input: randDense(n, 3), // h_i, one row per example
			Back:  randDense(n, 2), // one curvature vector g_i per example
		}
		var k curvature.KFACBlock
		k.Update(l) // Ā = E[h̃h̃ᵀ], G = E[ggᵀ]
		a, g := k.Factors()
		var kfac, exact mat.SymDense
		var diff mat.Dense
		curvature.DenseKFAC(&kfac, a, g)
		curvature.DenseBlock(&exact, l)
		diff.Sub(&kfac, &exact)
		fmt.Printf("n = %d: ‖Ā⊗G − exact‖ / ‖exact‖ < 1e-12: %v\n", n, mat.Norm(&diff, 2) < 1e-12*mat.Norm(&exact, 2))
	}
	// Output:
	// n = 1: ‖Ā⊗G − exact‖ / ‖exact‖ < 1e-12: true
	// n = 8: ‖Ā⊗G − exact‖ / ‖exact‖ < 1e-12: false
}
