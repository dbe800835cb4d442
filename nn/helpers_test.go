package nn

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/diff/fd"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
)

// The finite-difference settings of the tests: second-order central
// differences with step 1e-5 for first derivatives (error ~1e-10), 1e-4 for
// second derivatives in a (error ~1e-8), and 1e-5 for second derivatives in
// f, where the cross-entropies have terms like y/f² and small f makes the
// truncation error of a larger step dominate.
var (
	central1  = &fd.Settings{Formula: fd.Central, Step: 1e-5}
	central2  = &fd.Settings{Formula: fd.Central, Step: 1e-4}
	central2f = &fd.Settings{Formula: fd.Central, Step: 1e-5}
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// expectPanic checks that f panics with a string starting with "nn: " and
// containing each of the fragments.
func expectPanic(t *testing.T, name string, f func(), fragments ...string) {
	t.Helper()
	msg := testutil.PanicMessage(f)
	if !strings.HasPrefix(msg, "nn: ") {
		t.Errorf("%s: panic %q, want prefix \"nn: \"", name, msg)
		return
	}
	for _, s := range fragments {
		if !strings.Contains(msg, s) {
			t.Errorf("%s: panic %q does not contain %q", name, msg, s)
		}
	}
}

// equalApprox reports whether a and b agree entrywise within
// abs + rel·max(|a|, |b|).
func equalApprox(t *testing.T, name string, got, want mat.Matrix, abs, rel float64) {
	t.Helper()
	r, c := want.Dims()
	if gr, gc := got.Dims(); gr != r || gc != c {
		t.Errorf("%s: got %d×%d, want %d×%d", name, gr, gc, r, c)
		return
	}
	for i := 0; i < r; i++ {
		for j := 0; j < c; j++ {
			g, w := got.At(i, j), want.At(i, j)
			if math.Abs(g-w) > abs+rel*math.Max(math.Abs(g), math.Abs(w)) || math.IsNaN(g) != math.IsNaN(w) {
				t.Errorf("%s: (%d,%d) = %.12g, want %.12g\ngot  %v\nwant %v", name, i, j, g, w,
					mat.Formatted(got, mat.Squeeze()), mat.Formatted(want, mat.Squeeze()))
				return
			}
		}
	}
}

func rowVec(m *mat.Dense, i int) []float64 {
	return append([]float64(nil), row(m, i)...)
}

// actJacobianFD returns the k×k jacobian of act at a by central differences.
func actJacobianFD(act Activation, a []float64) *mat.Dense {
	k := len(a)
	j := mat.NewDense(k, k, nil)
	fd.Jacobian(j, func(y, x []float64) {
		act.Forward(mat.NewDense(1, k, y), mat.NewDense(1, k, append([]float64(nil), x...)))
	}, a, &fd.JacobianSettings{Formula: fd.Central, Step: 1e-6})
	return j
}
