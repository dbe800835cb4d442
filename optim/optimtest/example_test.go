package optimtest_test

import (
	"fmt"
	"log"

	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"github.com/secondorder/secondorder/optim/optimtest"
)

// An optimizer through the test problems, as optim's own tests run every
// optimizer: each Next draws a minibatch and fills the records (Input,
// Grad, GradW, GradB, Risk, and a Monte-Carlo Fisher vector per example in
// Back), Risk measures the whole training set.
func Example() {
	for _, p := range []*optimtest.Task{optimtest.Regression(1), optimtest.Classifier(1, nn.Tanh{})} {
		opt := &optim.KFAC{}
		before := p.Risk()
		for range 300 {
			p.Next()
			if err := opt.Step(p.Records()); err != nil {
				log.Fatal(err)
			}
		}
		fmt.Printf("%s: K-FAC below a tenth of the initial risk in %d updates: %t\n", p.Name(), p.Steps(), p.Risk() < before/10)
	}
	// Output:
	// Regression: K-FAC below a tenth of the initial risk in 300 updates: true
	// Classifier-tanh: K-FAC below a tenth of the initial risk in 300 updates: true
}
