// Command compare trains the same MNIST classifier three ways and prints a
// table: secondorder's K-FAC and secondorder's Adam on records computed by
// GoMLX graphs (package gomlx of this module), and GoMLX's own Adam
// (train.Trainer, layers.Dense, optimizers.Adam) — every forward and
// backward pass on GoMLX's pure-Go backend, simplego.
//
//	go run ./compare                 # 784-100-10 ReLU, batch 100, 300 updates each
//	go run ./compare -updates 1000 -act tanh
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/optim"

	gomlxrec "github.com/secondorder/secondorder/interop/gomlx"
)

// config holds the flags.
type config struct {
	hidden  int
	act     string
	batch   int
	updates int
	train   int // training images used, 0 for all
	seed    uint64
	mnist   string
}

func main() {
	var c config
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "compare trains one MNIST classifier with secondorder's K-FAC and Adam on records computed by GoMLX, and with GoMLX's own Adam, and prints a table.")
		fs.PrintDefaults()
	}
	fs.IntVar(&c.hidden, "hidden", 100, "hidden units of the 784-H-10 classifier")
	fs.StringVar(&c.act, "act", "relu", "hidden activation: relu or tanh")
	fs.IntVar(&c.batch, "batch", 100, "minibatch size")
	fs.IntVar(&c.updates, "updates", 300, "updates of each method")
	fs.IntVar(&c.train, "train", 0, "training images used (0: all 60000)")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed")
	fs.StringVar(&c.mnist, "mnist", "", "directory of the MNIST files (empty: search as package datasets does)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(2)
	}
	if _, err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

// check validates the flags.
func (c config) check() error {
	switch {
	case c.hidden < 1:
		return fmt.Errorf("-hidden %d: want ≥ 1", c.hidden)
	case c.act != "relu" && c.act != "tanh":
		return fmt.Errorf("-act %q: want relu or tanh", c.act)
	case c.batch < 1:
		return fmt.Errorf("-batch %d: want ≥ 1", c.batch)
	case c.updates < 1:
		return fmt.Errorf("-updates %d: want ≥ 1", c.updates)
	case c.train < 0:
		return fmt.Errorf("-train %d: want ≥ 0", c.train)
	}
	return nil
}

// result is one row of the table.
type result struct {
	name             string
	seconds          float64
	testAcc, testNLL float64
}

// run trains the three ways and prints the table to w.
func run(c config, w io.Writer) ([]result, error) {
	data, err := datasets.LoadMNIST(c.mnist)
	if err != nil {
		return nil, err
	}
	trainX, trainLabels := data.TrainImages, data.TrainLabels
	if c.train > 0 && c.train < len(trainLabels) {
		trainX = mat.DenseCopyOf(trainX.Slice(0, c.train, 0, datasets.MNISTPixels))
		trainLabels = trainLabels[:c.train]
	}
	trainY := datasets.OneHot(trainLabels, 10)
	testX, testLabels := data.TestImages, data.TestLabels
	backend, err := simplego.New("")
	if err != nil {
		return nil, err
	}
	defer backend.Finalize()
	act := gomlxrec.ReLU
	if c.act == "tanh" {
		act = gomlxrec.Tanh
	}
	sizes := []int{datasets.MNISTPixels, c.hidden, 10}
	fmt.Fprintf(w, "MNIST %d training images, net %d-%d-10 %s, batch %d, %d updates per method, backend %s; secondorder linear algebra on %s\n",
		len(trainLabels), datasets.MNISTPixels, c.hidden, c.act, c.batch, c.updates, backend.Name(), secondorder.Backend())

	var results []result
	for _, m := range []struct {
		name string
		opt  optim.Optimizer
		mc   bool // K-FAC reads Monte-Carlo Fisher vectors
	}{
		{"secondorder K-FAC (zero value) on GoMLX records", &optim.KFAC{}, true},
		{"secondorder Adam (zero value) on GoMLX records", &optim.Adam{}, false},
	} {
		rng := rand.New(rand.NewPCG(c.seed, 1))
		net := gomlxrec.NewMLP(backend, sizes, act, rng)
		batches := datasets.NewBatches(len(trainLabels), rng, datasets.BatchConfig{Size: c.batch})
		var xb, yb mat.Dense
		t0 := time.Now()
		for u := range c.updates {
			batches.Next()
			batches.Rows(&xb, trainX)
			batches.Rows(&yb, trainY)
			var sampler *rand.Rand
			if m.mc {
				sampler = rng
			}
			recs, err := net.Records(&xb, &yb, sampler)
			if err != nil {
				return nil, err
			}
			if err := m.opt.Step(recs); err != nil {
				return nil, fmt.Errorf("%s, update %d: %w", m.name, u, err)
			}
		}
		secs := time.Since(t0).Seconds()
		logits, err := net.Logits(testX)
		if err != nil {
			return nil, err
		}
		acc, nll := score(logits, testLabels)
		results = append(results, result{m.name, secs, acc, nll})
	}

	// GoMLX's own Adam, on the same batches of the same data.
	r, err := gomlxAdam(backend, c, act, trainX, trainY, trainLabels, testX, testLabels)
	if err != nil {
		return nil, err
	}
	results = append(results, r)

	fmt.Fprintf(w, "\n| method | training s | test accuracy | test loss |\n|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %.1f | %.2f %% | %.4f |\n", r.name, r.seconds, r.testAcc, r.testNLL)
	}
	return results, nil
}

// gomlxAdam trains the classifier with GoMLX's layers and optimizer
// (Adam, learning rate 0.001, GoMLX's default initialisation).
func gomlxAdam(backend backends.Backend, c config, act gomlxrec.Activation, trainX, trainY *mat.Dense, trainLabels []int,
	testX *mat.Dense, testLabels []int) (result, error) {
	ctx := context.New()
	model := func(ctx *context.Context, _ any, inputs []*graph.Node) []*graph.Node {
		h := layers.DenseWithBias(ctx.In("hidden"), inputs[0], c.hidden)
		if act == gomlxrec.ReLU {
			h = activations.Relu(h)
		} else {
			h = graph.Tanh(h)
		}
		return []*graph.Node{layers.DenseWithBias(ctx.In("output"), h, 10)}
	}
	trainer := train.NewTrainer(backend, ctx, model, losses.CategoricalCrossEntropyLogits,
		optimizers.Adam().LearningRate(1e-3).Done(), nil, nil)
	rng := rand.New(rand.NewPCG(c.seed, 1))
	batches := datasets.NewBatches(len(trainLabels), rng, datasets.BatchConfig{Size: c.batch})
	var xb, yb mat.Dense
	t0 := time.Now()
	for u := range c.updates {
		batches.Next()
		batches.Rows(&xb, trainX)
		batches.Rows(&yb, trainY)
		xt, yt := denseTensor(&xb), denseTensor(&yb)
		metrics, err := trainer.TrainStep(nil, []*tensors.Tensor{xt}, []*tensors.Tensor{yt})
		xt.FinalizeAll()
		yt.FinalizeAll()
		if err != nil {
			return result{}, fmt.Errorf("GoMLX Adam, update %d: %w", u, err)
		}
		for _, m := range metrics {
			m.FinalizeAll()
		}
	}
	secs := time.Since(t0).Seconds()
	eval, err := context.NewExec(backend, ctx.Reuse(), func(ctx *context.Context, x *graph.Node) *graph.Node {
		return model(ctx, nil, []*graph.Node{x})[0]
	})
	if err != nil {
		return result{}, err
	}
	xt := denseTensor(testX)
	outs, err := eval.Exec(xt)
	xt.FinalizeAll()
	if err != nil {
		return result{}, fmt.Errorf("GoMLX Adam, evaluation: %w", err)
	}
	flat, err := tensors.CopyFlatData[float64](outs[0])
	outs[0].FinalizeAll()
	if err != nil {
		return result{}, err
	}
	acc, nll := score(mat.NewDense(len(testLabels), 10, flat), testLabels)
	return result{"GoMLX Adam (optimizers.Adam, lr 0.001) on GoMLX layers", secs, acc, nll}, nil
}

// denseTensor copies a matrix into a float64 tensor.
func denseTensor(a *mat.Dense) *tensors.Tensor {
	r, c := a.Dims()
	data := make([]float64, 0, r*c)
	for i := range r {
		data = append(data, a.RawRowView(i)...)
	}
	return tensors.FromFlatDataAndDimensions(data, r, c)
}

// score returns the accuracy in percent and the mean cross-entropy of the
// logits for the labels.
func score(logits *mat.Dense, labels []int) (acc, nll float64) {
	correct := 0
	for i, y := range labels {
		row := logits.RawRowView(i)
		best, mx := 0, row[0]
		for j, v := range row {
			if v > mx {
				best, mx = j, v
			}
		}
		if best == y {
			correct++
		}
		s := 0.0
		for _, v := range row {
			s += math.Exp(v - mx)
		}
		nll += mx + math.Log(s) - row[y]
	}
	n := float64(len(labels))
	return 100 * float64(correct) / n, nll / n
}
