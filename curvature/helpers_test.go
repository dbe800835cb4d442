package curvature

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xc0ffee)) }

func randDense(rng *rand.Rand, r, c int, scale float64) *mat.Dense {
	m := mat.NewDense(r, c, nil)
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			m.Set(i, j, scale*rng.NormFloat64())
		}
	}
	return m
}

func randVec(rng *rand.Rand, n int) *mat.VecDense {
	v := mat.NewVecDense(n, nil)
	for i := 0; i < n; i++ {
		v.SetVec(i, rng.NormFloat64())
	}
	return v
}

// maxAbs returns max |m_ij|.
func maxAbs(m mat.Matrix) float64 {
	r, c := m.Dims()
	v := 0.0
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			v = max(v, math.Abs(m.At(i, j)))
		}
	}
	return v
}

// relDiff returns ‖a − b‖_F / ‖b‖_F (‖a − b‖_F when b is zero).
func relDiff(a, b mat.Matrix) float64 {
	var d mat.Dense
	d.Sub(a, b)
	nb := mat.Norm(b, 2)
	if nb == 0 {
		return mat.Norm(&d, 2)
	}
	return mat.Norm(&d, 2) / nb
}

// equalApprox reports an error unless |got − want| ≤ abs + rel·max|want|
// entrywise.
func equalApprox(t *testing.T, name string, got, want mat.Matrix, abs, rel float64) bool {
	t.Helper()
	r, c := want.Dims()
	if gr, gc := got.Dims(); gr != r || gc != c {
		t.Errorf("%s: got %d×%d, want %d×%d", name, gr, gc, r, c)
		return false
	}
	tol := abs + rel*maxAbs(want)
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

// expectPanic checks that f panics with a message starting "curvature: "
// and containing fragment.
func expectPanic(t *testing.T, name string, f func(), fragment string) {
	t.Helper()
	expectPanicFrom(t, name, f, "curvature: ", fragment)
}

// expectPanicFrom checks that f panics with a message starting with prefix
// and containing fragment.
func expectPanicFrom(t *testing.T, name string, f func(), prefix, fragment string) {
	t.Helper()
	var msg string
	func() {
		defer func() {
			if r := recover(); r != nil {
				msg = fmt.Sprint(r)
			} else {
				msg = "<no panic>"
			}
		}()
		f()
	}()
	if !strings.HasPrefix(msg, prefix) || !strings.Contains(msg, fragment) {
		t.Errorf("%s: panic %q, want prefix %q and %q", name, msg, prefix, fragment)
	}
}

// augmented returns h̃ = (h, 1).
func augmented(h []float64) []float64 { return append(append([]float64(nil), h...), 1) }
