package kron_test

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/kron"
)

// The identity behind every Kronecker-factored curvature product:
// (A ⊗ B) vec(X) = vec(B X Aᵀ), computed by MulMat without forming A ⊗ B,
// checked against the formed Kronecker product.
func ExampleMulMat() {
	a := mat.NewDense(2, 2, []float64{1, 2, 3, 4})
	b := mat.NewDense(2, 2, []float64{0, 1, 1, 0})
	x := mat.NewDense(2, 2, []float64{1, 0, 2, 1})

	var bxa mat.Dense
	kron.MulMat(&bxa, a, b, x) // B X Aᵀ
	var got mat.VecDense
	kron.Vec(&got, &bxa)

	var ab mat.Dense
	kron.Product(&ab, a, b) // A ⊗ B, 4 × 4
	var vx, want mat.VecDense
	kron.Vec(&vx, x)
	want.MulVec(&ab, &vx)

	fmt.Println("vec(B X Aᵀ)    ", got.RawVector().Data)
	fmt.Println("(A ⊗ B) vec(X) ", want.RawVector().Data)
	// Output:
	// vec(B X Aᵀ)     [4 1 10 3]
	// (A ⊗ B) vec(X)  [4 1 10 3]
}
