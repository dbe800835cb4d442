package network_test

import (
	"fmt"
	"log"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/curvature/network"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// K-FAC and ACP, at their zero values, train an nn classifier: the loop of
// the README's quick start, on synthetic data so that it runs in the
// tests. Backprop.Fill runs the forward and backward passes and puts one
// Monte-Carlo Fisher vector per example into the records' Back, which
// K-FAC reads (ACP reads Input and Grad only).
func Example_kfacAndACPOnNetwork() {
	for _, name := range []string{"K-FAC", "ACP"} {
		rng := rand.New(rand.NewPCG(1, 2))
		x, labels, _ := datasets.Blobs(rng, 1000, 20, 4, 3, 1) // 1000 points in 4 Gaussian classes
		y := datasets.OneHot(labels, 4)
		net := nn.New([]int{20, 32, 4}, []nn.Activation{nn.Tanh{}, nn.Softmax{}})
		net.Init(nn.Glorot{}, rng)
		loss := nn.CrossEntropy{}

		var opt optim.Optimizer = &optim.KFAC{}
		if name == "ACP" {
			opt = &optim.ACP{}
		}
		bp := network.Backprop{Estimator: network.FisherGradients, Rand: rng}
		batches := datasets.NewBatches(1000, rng, datasets.BatchConfig{Size: 100})
		var xb, yb *mat.Dense
		for step := 0; step < 200 && batches.Next(); step++ {
			xb, yb = batches.Rows(xb, x), batches.Rows(yb, y)
			bp.Fill(net, loss, xb, yb) // Forward, Backward, and the Monte-Carlo Fisher vectors into Back
			if err := opt.Step(net.Records()); err != nil {
				log.Fatal(err) // an invalid setting, NaN in the records, a failed factorization
			}
		}
		acc := nn.Accuracy(net.Forward(x), labels)
		fmt.Printf("%s: training accuracy above 95 %%: %t\n", name, acc > 0.95)
	}
	// Output:
	// K-FAC: training accuracy above 95 %: true
	// ACP: training accuracy above 95 %: true
}
