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

// A Kronecker solve, (A ⊗ B) vec(X) = vec(C), by the Cholesky factors of
// the two small factors: X = B⁻¹ C A⁻¹, without forming the 6 × 6 A ⊗ B.
// Multiplying back, (A ⊗ B) vec(X) = vec(B X A), gives C.
func ExampleCholeskyKron_Solve() {
	a := mat.NewSymDense(2, []float64{4, 1, 1, 3})
	b := mat.NewSymDense(3, []float64{2, 0, 1, 0, 3, 0, 1, 0, 2})
	c := mat.NewDense(3, 2, []float64{1, 2, 3, 4, 5, 6}) // n_B × n_A

	var k kron.CholeskyKron
	if err := k.Factorize(a, b); err != nil {
		fmt.Println(err) // a factor not positive definite
		return
	}
	var x mat.Dense
	k.Solve(&x, c)

	var back mat.Dense
	kron.MulMat(&back, a, b, &x) // B X Aᵀ, Aᵀ = A
	fmt.Printf("X =\n%.4f\n", mat.Formatted(&x))
	fmt.Printf("B X A =\n%.4f\n", mat.Formatted(&back))
	// Output:
	// X =
	// ⎡-0.2121  -0.1515⎤
	// ⎢ 0.1515   0.3939⎥
	// ⎣ 0.5152   0.9394⎦
	// B X A =
	// ⎡1.0000  2.0000⎤
	// ⎢3.0000  4.0000⎥
	// ⎣5.0000  6.0000⎦
}
