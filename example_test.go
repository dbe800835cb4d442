package secondorder_test

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// A layer's gradient as the n_out × (n_in+1) matrix [∇W ∇b] and the whole
// network's parameter vector θ = [vec(W_1); b_1; vec(W_2); b_2] (vec stacks
// columns, thesis eq. 3.3.1), the two shapes that curvature code needs.
func ExampleLayout() {
	l1 := &secondorder.Layer{W: mat.NewDense(2, 2, nil), B: mat.NewVecDense(2, nil),
		GradW: mat.NewDense(2, 2, []float64{1, 2, 3, 4}), GradB: mat.NewVecDense(2, []float64{5, 6})}
	l2 := &secondorder.Layer{W: mat.NewDense(1, 2, nil), B: mat.NewVecDense(1, nil),
		GradW: mat.NewDense(1, 2, []float64{7, 8}), GradB: mat.NewVecDense(1, []float64{9})}
	layers := []*secondorder.Layer{l1, l2}

	var g mat.Dense
	l1.ParamGrad(&g)
	fmt.Printf("[∇W ∇b] of layer 1:\n%v\n", mat.Formatted(&g))

	lay := secondorder.NewLayout(layers)
	dirs := lay.Directions()
	for k, l := range layers {
		dirs[k].W.Copy(l.GradW)
		dirs[k].B.CopyVec(l.GradB)
	}
	theta := make([]float64, lay.Len())
	lay.Vec(theta, dirs)
	fmt.Println("offsets", lay.Offsets, "vec", theta)
	// Output:
	// [∇W ∇b] of layer 1:
	// ⎡1  2  5⎤
	// ⎣3  4  6⎦
	// offsets [0 6 9] vec [1 3 2 4 5 6 7 8 9]
}
