// Command nnndrift measures how far the whitened inputs of a natural neural
// network (nn.Network.SetWhitened, thesis §3.5.2) drift from white between
// two whitening refreshes while SGD trains it: the measurement behind the
// README's paragraph on natural neural networks,
//
//	go run ./examples/nnndrift -eps 1 -lr 0.01 -period 100 -updates 250
//
// Every -every updates, and around each refresh, it prints the risk on
// 2000 held-out training images and, for each layer, the largest eigenvalue
// of the covariance of its whitened inputs on them (about 1 or below when
// the whitening is fresh).
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"

	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

type config struct {
	arch                   string
	eps, lr                float64
	period, updates, every int
	mnist                  string
}

func main() {
	var c config
	flag.StringVar(&c.arch, "arch", "784-1000-500-250-30-250-500-1000-784", "layer sizes of the autoencoder")
	flag.Float64Var(&c.eps, "eps", 1, "whitening regularisation ε relative to the mean input variance (nn.Network.Whiten)")
	flag.Float64Var(&c.lr, "lr", 0.01, "SGD learning rate")
	flag.IntVar(&c.period, "period", 100, "updates between whitening refreshes")
	flag.IntVar(&c.updates, "updates", 250, "updates to run")
	flag.IntVar(&c.every, "every", 25, "updates between reports")
	flag.StringVar(&c.mnist, "mnist", "", "directory of the MNIST files (empty: $MNIST_DIR, the module cache, the module proxy)")
	flag.Parse()
	if err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "nnndrift:", err)
		os.Exit(1)
	}
}

func run(c config, w io.Writer) error {
	var sizes []int
	for _, f := range strings.Split(c.arch, "-") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return fmt.Errorf("-arch %q: want sizes like 784-1000-500-250-30-250-500-1000-784", c.arch)
		}
		sizes = append(sizes, n)
	}
	if len(sizes) < 2 || sizes[0] != 784 || sizes[len(sizes)-1] != 784 {
		return fmt.Errorf("-arch %q: the first and last sizes must be 784", c.arch)
	}
	if c.period < 1 || c.every < 1 || c.updates < 0 || !(c.eps > 0) || !(c.lr > 0) {
		return fmt.Errorf("want -period, -every ≥ 1, -updates ≥ 0, -eps and -lr > 0")
	}
	data, err := datasets.MNISTConfig{Dir: c.mnist, Progress: w}.Load()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 0x5ec0))
	net := nn.NewAutoencoderWhitened(sizes)
	net.Init(nn.Sparse{}, rng)
	train := data.TrainImages
	n, _ := train.Dims()
	// The whitening sample, as examples/autoencoder's nnn: 1000 random
	// training images; the probe: 2000 others.
	sample := mat.NewDense(1000, 784, nil)
	for i := 0; i < 1000; i++ {
		sample.SetRow(i, train.RawRowView(rng.IntN(n)))
	}
	probe := train.Slice(n-2000, n, 0, 784).(*mat.Dense)
	if err := net.Whiten(sample, c.eps); err != nil {
		return err
	}
	opt := &optim.SGD{Rate: c.lr}
	b := datasets.NewBatches(n, rng, datasets.BatchConfig{Size: 100})
	var xb *mat.Dense
	loss := nn.Quadratic{}
	report := func(u int, what string) {
		fmt.Fprintf(w, "update %4d%s risk %.2f, largest eigenvalue of the whitened inputs' covariance per layer:", u, what, net.Risk(loss, probe, probe))
		net.Forward(probe)
		for _, rec := range net.Records() {
			var cov mat.SymDense
			stat.CovarianceMatrix(&cov, rec.Input, nil)
			var es mat.EigenSym
			es.Factorize(&cov, false)
			v := es.Values(nil)
			fmt.Fprintf(w, " %.3g", v[len(v)-1])
		}
		fmt.Fprintln(w)
	}
	report(0, " (whitened)")
	for u := 1; u <= c.updates; u++ {
		b.Next()
		xb = b.Rows(xb, train)
		net.Forward(xb)
		net.Backward(loss, xb)
		if err := opt.Step(net.Records()); err != nil {
			return err
		}
		if u%c.every == 0 || u%c.period == 0 {
			report(u, "")
		}
		if u%c.period == 0 {
			if err := net.Whiten(sample, c.eps); err != nil {
				return err
			}
			report(u, " (whitened)")
		}
	}
	return nil
}
