package network

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0xc0ffee)) }

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
	net.SetParams(testutil.RandSlice(rng, net.NumParams(), 0.8))
	X := testutil.RandDense(rng, n, c.sizes[0], 1)
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
			testutil.RandDistribution(rng, Y.RawRowView(i), 0.1)
		default:
			for j := 0; j < k; j++ {
				Y.Set(i, j, rng.NormFloat64())
			}
		}
	}
	return Y
}

// expectPanic checks that f panics with a message starting "network: "
// and containing fragment.
func expectPanic(t *testing.T, name string, f func(), fragment string) {
	t.Helper()
	testutil.ExpectPanicFrom(t, name, f, "network: ", fragment)
}

// matching reports whether the case's loss matches its output activation.
func (c netCase) matching() bool { return matching(c.loss, c.acts[len(c.acts)-1]) }

var splits = []nn.Split{nn.SplitLogits, nn.SplitOutputs}
