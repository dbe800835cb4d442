package kron

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// Trace returns tr(A⊗B) = tr(A) tr(B) for square A and B, at cost
// O(n_A + n_B). It panics if a factor is not square.
func Trace(a, b mat.Matrix) float64 {
	squareDim(a, "Trace", "A")
	squareDim(b, "Trace", "B")
	return mat.Trace(a) * mat.Trace(b)
}

// LogDet returns the log of the absolute value of det(A⊗B) and its sign, for
// square A (n_A×n_A) and B (n_B×n_B):
//
//	det(A⊗B) = det(A)^{n_B} det(B)^{n_A},
//	log|det(A⊗B)| = n_B log|det A| + n_A log|det B|,
//
// computed with LU factorizations of the factors, at cost O(n_A³ + n_B³). The
// sign is 0 and the log -Inf when a factor is singular. It panics if a factor
// is not square. For symmetric positive definite factors, CholeskyKron.LogDet
// is cheaper.
func LogDet(a, b mat.Matrix) (logdet, sign float64) {
	na := squareDim(a, "LogDet", "A")
	nb := squareDim(b, "LogDet", "B")
	la, sa := mat.LogDet(a)
	lb, sb := mat.LogDet(b)
	if sa == 0 || sb == 0 || math.IsInf(la, -1) || math.IsInf(lb, -1) {
		return math.Inf(-1), 0
	}
	sign = 1
	if sa < 0 && nb%2 == 1 {
		sign = -sign
	}
	if sb < 0 && na%2 == 1 {
		sign = -sign
	}
	return float64(nb)*la + float64(na)*lb, sign
}

// FrobeniusNorm returns the Frobenius norm ‖A⊗B‖_F = ‖A‖_F ‖B‖_F, for factors of any
// shape, at cost O(mn + pq).
func FrobeniusNorm(a, b mat.Matrix) float64 {
	return mat.Norm(a, 2) * mat.Norm(b, 2)
}
