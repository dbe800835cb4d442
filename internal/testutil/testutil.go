// Package testutil holds the helpers that the tests of several packages of
// the module share: seeded random matrices and vectors, approximate
// comparisons with stated tolerances, and checks of panic messages. Only
// _test.go files import it.
package testutil

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// RandSlice returns n values drawn from N(0, scale²).
func RandSlice(rng *rand.Rand, n int, scale float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = scale * rng.NormFloat64()
	}
	return s
}

// RandDense returns an r×c matrix of values drawn from N(0, scale²), row by
// row.
func RandDense(rng *rand.Rand, r, c int, scale float64) *mat.Dense {
	return mat.NewDense(r, c, RandSlice(rng, r*c, scale))
}

// RandVec returns a vector of n values drawn from N(0, 1).
func RandVec(rng *rand.Rand, n int) *mat.VecDense {
	return mat.NewVecDense(n, RandSlice(rng, n, 1))
}

// RandDistribution fills p with a random probability vector: values drawn
// uniformly from [floor, 1+floor), divided by their sum.
func RandDistribution(rng *rand.Rand, p []float64, floor float64) {
	s := 0.0
	for j := range p {
		p[j] = rng.Float64() + floor
		s += p[j]
	}
	for j := range p {
		p[j] /= s
	}
}

// Augmented returns a copy of h with a 1 appended: h̃ = (h, 1), the input of
// a layer's bias-augmented parameters [W b].
func Augmented(h []float64) []float64 { return append(append([]float64(nil), h...), 1) }

// MaxAbs returns max |m_ij|.
func MaxAbs(m mat.Matrix) float64 {
	r, c := m.Dims()
	v := 0.0
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			v = max(v, math.Abs(m.At(i, j)))
		}
	}
	return v
}

// RelDiff returns ‖a − b‖_F / ‖b‖_F (‖a − b‖_F when b is zero).
func RelDiff(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	nb := mat.Norm(b, 2)
	if nb == 0 {
		return mat.Norm(&d, 2)
	}
	return mat.Norm(&d, 2) / nb
}

// EqualApprox reports an error, and returns false, unless got has the shape
// of want and |got − want| ≤ abs + rel·max|want| entrywise.
func EqualApprox(t testing.TB, name string, got, want mat.Matrix, abs, rel float64) bool {
	t.Helper()
	r, c := want.Dims()
	if gr, gc := got.Dims(); gr != r || gc != c {
		t.Errorf("%s: got %d×%d, want %d×%d", name, gr, gc, r, c)
		return false
	}
	tol := abs + rel*MaxAbs(want)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			g, w := got.At(i, j), want.At(i, j)
			if !(math.Abs(g-w) <= tol) {
				t.Errorf("%s: (%d,%d) = %.15g, want %.15g (|diff| %.3g > tol %.3g)", name, i, j, g, w, math.Abs(g-w), tol)
				return false
			}
		}
	}
	return true
}

// Recover calls f and reports whether it panicked, and the value it
// panicked with, formatted by fmt.Sprint.
func Recover(f func()) (msg string, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			msg, panicked = fmt.Sprint(r), true
		}
	}()
	f()
	return "", false
}

// PanicMessage calls f and returns the value it panics with, formatted by
// fmt.Sprint, or "<no panic>" when it returns normally.
func PanicMessage(f func()) string {
	if msg, panicked := Recover(f); panicked {
		return msg
	}
	return "<no panic>"
}

// ExpectPanicFrom reports an error unless f panics with a message starting
// with prefix (a package's "name: ") and containing fragment.
func ExpectPanicFrom(t testing.TB, name string, f func(), prefix, fragment string) {
	t.Helper()
	if msg := PanicMessage(f); !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, fragment) {
		t.Errorf("%s: panic %q, want prefix %q and %q", name, msg, prefix, fragment)
	}
}

// Race is true when the tests are built with the race detector (go test
// -race). sync.Pool then drops items at random, so code that reuses pooled
// workspace (gonum's mat, the calls into OpenBLAS loaded at run time)
// allocates now and then: allocation counts mean nothing under it.
const Race = race

// SkipAllocsUnderRace skips t when it is built with the race detector, for
// tests whose purpose is to count allocations (see Race).
func SkipAllocsUnderRace(t testing.TB) {
	t.Helper()
	if Race {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
}
