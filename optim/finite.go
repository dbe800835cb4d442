package optim

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
)

// checkFinite returns an error naming the first field of layer j's record
// that holds a NaN or an Inf: the gradients always, and Input, Grad, Back
// and BackScale when the method reads them at this update; and a BackScale
// that is negative or +Inf, as such.
func checkFinite(name string, j int, l *secondorder.Layer, input, grad, back bool) error {
	bad := func(field string) error {
		return fmt.Errorf("optim: %s: layer %d: %s holds NaN or Inf; parameters left unchanged", name, j, field)
	}
	switch {
	case !finiteDense(l.GradW):
		return bad("GradW")
	case !finiteVec(l.GradB):
		return bad("GradB")
	case grad && l.Grad != nil && !finiteDense(l.Grad):
		return bad("Grad")
	case input && l.Input != nil && !finiteDense(l.Input):
		return bad("Input")
	case back && l.Back != nil && !finiteDense(l.Back):
		return bad("Back")
	case back && math.IsNaN(l.BackScale):
		return bad("BackScale")
	case back && !finiteNonNeg(l.BackScale):
		return fmt.Errorf("optim: %s: layer %d: BackScale = %g, want finite and ≥ 0 (zero for 1/n); parameters left unchanged", name, j, l.BackScale)
	}
	for _, p := range l.Extra {
		if !finiteVec(p.Grad) {
			return bad("the gradient of Extra " + p.Name)
		}
	}
	return nil
}

// finiteDense reports whether every element of m is finite.
func finiteDense(m *mat.Dense) bool {
	raw := m.RawMatrix()
	if raw.Stride == raw.Cols {
		return finiteSlice(raw.Data[:raw.Rows*raw.Cols])
	}
	for i := 0; i < raw.Rows; i++ {
		if !finiteSlice(raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]) {
			return false
		}
	}
	return true
}

// finiteVec reports whether every element of v is finite.
func finiteVec(v *mat.VecDense) bool {
	raw := v.RawVector()
	if raw.Inc == 1 {
		return finiteSlice(raw.Data[:raw.N])
	}
	for i := 0; i < raw.N; i++ {
		if x := raw.Data[i*raw.Inc]; math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}

// finiteSlice reports whether every element is finite: x − x is NaN exactly
// for NaN and ±Inf, and NaN propagates through the sums. Four sums, so that
// the additions do not wait on each other (about 4× faster on long slices).
func finiteSlice(x []float64) bool {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] - x[i]
		s1 += x[i+1] - x[i+1]
		s2 += x[i+2] - x[i+2]
		s3 += x[i+3] - x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] - x[i]
	}
	return s0+s1+s2+s3 == 0
}

// checkSquares returns an error naming the first gradient of layer j's
// record with an entry whose square overflows to +Inf (|g| > 1.3e154):
// Adam's and RMSProp's second moments would stay infinite and stop every
// later update.
func checkSquares(name string, j int, l *secondorder.Layer) error {
	bad := func(field string) error {
		return fmt.Errorf("optim: %s: layer %d: %s has an entry whose square overflows (|g| > 1.3e154); parameters left unchanged", name, j, field)
	}
	if !finiteSquaresDense(l.GradW) {
		return bad("GradW")
	}
	if !finiteSquaresVec(l.GradB.RawVector()) {
		return bad("GradB")
	}
	for _, p := range l.Extra {
		if !finiteSquaresVec(p.Grad.RawVector()) {
			return bad("the gradient of Extra " + p.Name)
		}
	}
	return nil
}

// finiteSquaresDense reports whether every element of m has a finite square.
func finiteSquaresDense(m *mat.Dense) bool {
	raw := m.RawMatrix()
	for i := 0; i < raw.Rows; i++ {
		if !finiteSquares(raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]) {
			return false
		}
	}
	return true
}

// finiteSquaresVec reports whether every element of v has a finite square.
func finiteSquaresVec(v blas64.Vector) bool {
	for i := 0; i < v.N; i++ {
		if x := v.Data[i*v.Inc]; math.IsInf(x*x, 0) || math.IsNaN(x) {
			return false
		}
	}
	return true
}

// finiteSquares reports whether every x² is finite: as finiteSlice, on the
// squares.
func finiteSquares(x []float64) bool {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		q0, q1, q2, q3 := x[i]*x[i], x[i+1]*x[i+1], x[i+2]*x[i+2], x[i+3]*x[i+3]
		s0 += q0 - q0
		s1 += q1 - q1
		s2 += q2 - q2
		s3 += q3 - q3
	}
	for ; i < len(x); i++ {
		q := x[i] * x[i]
		s0 += q - q
	}
	return s0+s1+s2+s3 == 0
}
