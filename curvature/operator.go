package curvature

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// LinearOperator is a symmetric n×n matrix A known only through its
// products, such as curvature/network's Operator (the Hessian, Gauss–Newton
// and Fisher matrices of a network, applied by R-operator passes) or a
// *mat.SymDense wrapped by SymOperator. The estimators of this package that
// need only products — Hutchinson's diagonal and trace, Lanczos and
// stochastic Lanczos quadrature — take one.
type LinearOperator interface {
	// Dim returns n.
	Dim() int
	// MulVec writes dst = A v; dst has length n (an empty dst is resized)
	// and does not alias v.
	MulVec(dst *mat.VecDense, v mat.Vector)
}

// SymOperator is a dense symmetric matrix as a LinearOperator, for tests
// and small problems.
type SymOperator struct{ *mat.SymDense }

// Dim returns the size of the matrix.
func (s SymOperator) Dim() int { return s.SymmetricDim() }

// MulVec writes dst = A v.
func (s SymOperator) MulVec(dst *mat.VecDense, v mat.Vector) { dst.MulVec(s.SymDense, v) }

// defaultRand is the random source of the estimators whose Rand is nil: a
// fixed seed, so that a zero-value estimator is reproducible.
func defaultRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// orDefaultRand returns rng, or defaultRand() when it is nil.
func orDefaultRand(rng *rand.Rand) *rand.Rand {
	if rng == nil {
		return defaultRand()
	}
	return rng
}

// countSetting returns the count setting v of an operation, def when it is
// zero; it panics, naming the operation and the field, when it is negative.
func countSetting(v, def int, op, field string) int {
	if v == 0 {
		v = def
	}
	if v < 1 {
		panic(fmt.Sprintf("curvature: %s: %s = %d, want ≥ 1 (0 for the default)", op, field, v))
	}
	return v
}

// rademacher fills v with independent ±1 entries of equal probability.
func rademacher(v []float64, rng *rand.Rand) {
	for i := 0; i < len(v); {
		bits := rng.Uint64()
		for k := 0; k < 64 && i < len(v); k++ {
			if bits&1 == 1 {
				v[i] = 1
			} else {
				v[i] = -1
			}
			bits >>= 1
			i++
		}
	}
}

// mulChecked writes dst = A v and returns an error naming op when the
// product has a non-finite entry.
func mulChecked(op LinearOperator, dst, v *mat.VecDense, name string, probe int) error {
	op.MulVec(dst, v)
	for i, x := range dst.RawVector().Data {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("curvature: %s: product %d has non-finite entry %v at %d", name, probe, x, i)
		}
	}
	return nil
}

// checkDim panics with a message prefixed "curvature: " for an operator of
// dimension below 1.
func checkDim(op LinearOperator, name string) int {
	if op == nil {
		panic(fmt.Sprintf("curvature: %s: nil operator", name))
	}
	n := op.Dim()
	if n < 1 {
		panic(fmt.Sprintf("curvature: %s: operator of dimension %d", name, n))
	}
	return n
}
