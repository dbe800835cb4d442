package nn_test

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// A forward and a backward pass fill the per-layer records that the
// optimizers read: Input (n × n_in, the activation entering the layer),
// Grad (n × n_out, ∇_a l per example, not divided by n), GradW (n_out × n_in,
// (1/n) Gradᵀ Input) and Risk, the minibatch's mean loss, the same on every
// layer.
func ExampleNetwork_Backward() {
	rng := rand.New(rand.NewPCG(1, 2))
	net := nn.New([]int{3, 4, 2}, []nn.Activation{nn.Tanh{}, nn.Identity{}})
	net.Init(nn.Glorot{}, rng)

	const n = 5
	x := mat.NewDense(n, 3, nil)
	y := mat.NewDense(n, 2, nil)
	x.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, x)
	y.Apply(func(_, _ int, _ float64) float64 { return rng.NormFloat64() }, y)

	loss := nn.Quadratic{} // ‖f − y‖², not halved
	net.Forward(x)
	net.Backward(loss, y)
	for l, rec := range net.Records() {
		ir, ic := rec.Input.Dims()
		gr, gc := rec.Grad.Dims()
		wr, wc := rec.GradW.Dims()
		fmt.Printf("layer %d: Input %d×%d  Grad %d×%d  GradW %d×%d  Risk %.4g\n",
			l, ir, ic, gr, gc, wr, wc, rec.Risk)
	}
	fmt.Printf("Risk = loss.Value: %.4g\n", loss.Value(net.Output(), y))
	// Output:
	// layer 0: Input 5×3  Grad 5×4  GradW 4×3  Risk 1.669
	// layer 1: Input 5×4  Grad 5×2  GradW 2×4  Risk 1.669
	// Risk = loss.Value: 1.669
}

// A softmax classifier on three Gaussian blobs, trained by a few steps of
// SGD on the cross-entropy; Classes gives the predicted classes and
// Accuracy the fraction that match the labels.
func ExampleAccuracy() {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, d, classes = 150, 4, 3
	x, labels, _ := datasets.Blobs(rng, n, d, classes, 2, 1)
	y := datasets.OneHot(labels, classes)

	net := nn.New([]int{d, classes}, []nn.Activation{nn.Softmax{}})
	net.Init(nn.Glorot{}, rng)
	loss := nn.CrossEntropy{}

	probs := net.Forward(x)
	fmt.Printf("predicted classes of the first 6 points: %v (labels %v)\n", nn.Classes(nil, probs)[:6], labels[:6])
	fmt.Printf("accuracy before: %.2f\n", nn.Accuracy(probs, labels))

	opt := &optim.SGD{Rate: 0.1, Momentum: 0.9}
	for step := 0; step < 20; step++ {
		net.Forward(x)
		net.Backward(loss, y)
		if err := opt.Step(net.Records()); err != nil {
			panic(err)
		}
	}
	probs = net.Forward(x)
	fmt.Printf("predicted classes of the first 6 points: %v\n", nn.Classes(nil, probs)[:6])
	fmt.Printf("accuracy after:  %.2f\n", nn.Accuracy(probs, labels))
	// Output:
	// predicted classes of the first 6 points: [0 2 0 1 1 0] (labels [0 1 2 0 1 2])
	// accuracy before: 0.28
	// predicted classes of the first 6 points: [0 1 2 0 1 2]
	// accuracy after:  0.95
}
