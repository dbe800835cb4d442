package network

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/nn"
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

// netCase is a small network and loss for the suite.
type netCase struct {
	name  string
	sizes []int
	acts  []nn.Activation
	loss  nn.Loss
}

// cases are three-layer networks with sigmoid and tanh hidden layers, one
// for every loss and for the quadratic loss after non-matching outputs.
var cases = []netCase{
	{"quadratic+identity", []int{3, 4, 3, 2}, []nn.Activation{nn.Tanh{}, nn.Sigmoid{}, nn.Identity{}}, nn.Quadratic{}},
	{"quadratic+sigmoid", []int{3, 4, 3, 2}, []nn.Activation{nn.Sigmoid{}, nn.Tanh{}, nn.Sigmoid{}}, nn.Quadratic{}},
	{"quadratic+softmax", []int{3, 4, 3, 3}, []nn.Activation{nn.Tanh{}, nn.Tanh{}, nn.Softmax{}}, nn.Quadratic{}},
	{"bce+sigmoid", []int{3, 4, 3, 2}, []nn.Activation{nn.Tanh{}, nn.Sigmoid{}, nn.Sigmoid{}}, nn.BinaryCrossEntropy{}},
	{"ce+softmax", []int{3, 4, 3, 3}, []nn.Activation{nn.Sigmoid{}, nn.Tanh{}, nn.Softmax{}}, nn.CrossEntropy{}},
}

// reluCase has a ReLU hidden layer; its second derivative is zero away
// from the kink, where finite differences of the gradient are unreliable, so
// it is used only in exact comparisons.
var reluCase = netCase{"relu/ce+softmax", []int{3, 5, 3}, []nn.Activation{nn.ReLU{}, nn.Softmax{}}, nn.CrossEntropy{}}

// setup builds the case's network with parameters drawn from N(0, 0.8²),
// n inputs from N(0, 1) and targets suited to the loss: Gaussian for the
// quadratic loss, values in [0, 1] (half of them 0 or 1) for the binary
// cross-entropy, and probability vectors (half of them one-hot) for the
// cross-entropy.
func setup(c netCase, n int, seed uint64) (*nn.Network, *mat.Dense, *mat.Dense) {
	rng := newRand(seed)
	net := nn.New(c.sizes, c.acts)
	theta := make([]float64, net.NumParams())
	for i := range theta {
		theta[i] = 0.8 * rng.NormFloat64()
	}
	net.SetParams(theta)
	X := randDense(rng, n, c.sizes[0], 1)
	Y := targets(c.loss, rng, n, c.sizes[len(c.sizes)-1])
	return net, X, Y
}

func targets(loss nn.Loss, rng *rand.Rand, n, k int) *mat.Dense {
	Y := mat.NewDense(n, k, nil)
	for i := 0; i < n; i++ {
		switch loss.(type) {
		case nn.BinaryCrossEntropy:
			for j := 0; j < k; j++ {
				v := rng.Float64()
				if i%2 == 1 {
					v = math.Round(v)
				}
				Y.Set(i, j, v)
			}
		case nn.CrossEntropy:
			if i%2 == 1 {
				Y.Set(i, rng.IntN(k), 1)
				continue
			}
			s := 0.0
			for j := 0; j < k; j++ {
				v := rng.Float64() + 0.1
				Y.Set(i, j, v)
				s += v
			}
			for j := 0; j < k; j++ {
				Y.Set(i, j, Y.At(i, j)/s)
			}
		default:
			for j := 0; j < k; j++ {
				Y.Set(i, j, rng.NormFloat64())
			}
		}
	}
	return Y
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

// expectPanic checks that f panics with a message starting "network: "
// and containing fragment.
func expectPanic(t *testing.T, name string, f func(), fragment string) {
	t.Helper()
	expectPanicFrom(t, name, f, "network: ", fragment)
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

// matching reports whether the case's loss matches its output activation.
func (c netCase) matching() bool { return matching(c.loss, c.acts[len(c.acts)-1]) }

var splits = []nn.Split{nn.SplitLogits, nn.SplitOutputs}
