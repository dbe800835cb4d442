package optim_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/optim"
	"gonum.org/v1/gonum/mat"
)

// Driving an optimizer from hand-made matrices, without package nn: a linear
// model a = W x + b on the quadratic loss ‖a − y‖², whose backpropagated
// gradient is ∇_a l = 2(a − y). Any network library that can provide the
// inputs and these gradients per affine layer plugs in the same way.
func Example_handMadeRecords() {
	rng := rand.New(rand.NewPCG(1, 1))
	const n, in, out = 64, 5, 2
	x := mat.NewDense(n, in, nil)
	x.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, x)
	wTrue := mat.NewDense(out, in, []float64{1, -2, 0, 3, 1, 0.5, 0, 1, -1, 2})
	y := mat.NewDense(n, out, nil)
	y.Mul(x, wTrue.T())

	layer := &secondorder.Layer{W: mat.NewDense(out, in, nil), B: mat.NewVecDense(out, nil), Input: x}
	a := mat.NewDense(n, out, nil)
	grad := mat.NewDense(n, out, nil)
	loss := func() float64 {
		a.Mul(x, layer.W.T())
		for i := 0; i < n; i++ {
			for j := 0; j < out; j++ {
				a.Set(i, j, a.At(i, j)+layer.B.AtVec(j))
			}
		}
		grad.Sub(a, y)
		r := mat.Norm(grad, 2)
		grad.Scale(2, grad) // ∇_a l = 2(a − y), one row per example
		return r * r / n
	}
	opt := &optim.SGD{Rate: 0.05, Momentum: 0.9}
	fmt.Printf("risk before: %.3f\n", loss())
	for step := 0; step < 200; step++ {
		loss()
		layer.Grad = grad
		layer.ComputeParamGrads() // ∇W = (1/n) gradᵀ x, ∇b = mean of grad rows
		if err := opt.Step([]*secondorder.Layer{layer}); err != nil {
			panic(err)
		}
	}
	fmt.Printf("risk after:  %.3f\n", loss())
	// Output:
	// risk before: 21.855
	// risk after:  0.000
}
