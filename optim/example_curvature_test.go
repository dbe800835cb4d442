package optim_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/optim"
)

// K-FAC and ACP from hand-made records of a linear model a = W x + b on
// the quadratic loss ‖a − y‖², whose Gauss–Newton matrix is
// (1/n) Σ_i h̃_i h̃_iᵀ ⊗ 2I: K-FAC with the exact Gauss–Newton vectors in Back
// (k = 2 rows √2·e_j per example: J_aᵀ D^{1/2} with D = 2I) and ACP with
// α = 2 both hold that matrix exactly, so one undamped step of rate 1 is the
// Newton step, which solves the least-squares problem. Grad holds the
// per-example gradients ∇_a l, not divided by n (gradients of the mean loss,
// as PyTorch hooks give them, must be multiplied by n). Other valid choices
// of Back are Back = Grad (the empirical Fisher, kfac-pytorch's default) and
// Monte-Carlo Fisher vectors (Martens & Grosse's, network.Backprop).
func Example_curvatureFromRecords() {
	const n, in, out = 64, 5, 2
	for _, name := range []string{"K-FAC", "ACP"} {
		rng := rand.New(rand.NewPCG(1, 1))
		x := mat.NewDense(n, in, nil)
		x.Apply(func(_, _ int, _ float64) float64 { return 1 + rng.NormFloat64() }, x)
		wTrue := mat.NewDense(out, in, []float64{1, -2, 0, 3, 1, 0.5, 0, 1, -1, 2})
		y := mat.NewDense(n, out, nil)
		y.Mul(x, wTrue.T())

		layer := &secondorder.Layer{W: mat.NewDense(out, in, nil), B: mat.NewVecDense(out, nil), Input: x}
		a, grad := mat.NewDense(n, out, nil), mat.NewDense(n, out, nil)
		risk := func() float64 {
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
		exact := optim.Rules{Rate: 1, Undamped: true, NormConstraint: math.Inf(1)}
		var opt optim.Optimizer = &optim.KFAC{Rules: exact}
		if name == "ACP" {
			opt = &optim.ACP{Rules: exact, Alpha: 2}
		}
		back := mat.NewDense(n*out, out, nil) // rows i·k+j: √2 e_j, example i
		for r := 0; r < n*out; r++ {
			back.Set(r, r%out, math.Sqrt2)
		}
		before := risk()
		for step := 0; step < 1; step++ {
			risk()
			layer.Grad = grad
			layer.Back = back // BackScale 0 means 1/n
			layer.ComputeParamGrads()
			if err := opt.Step([]*secondorder.Layer{layer}); err != nil {
				fmt.Println(err)
				return
			}
		}
		fmt.Printf("%-5s risk %.3f, after one update below 1e-20: %v\n", name, before, risk() < 1e-20)
	}
	// Output:
	// K-FAC risk 38.605, after one update below 1e-20: true
	// ACP   risk 38.605, after one update below 1e-20: true
}
