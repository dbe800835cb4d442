package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/secondorder/secondorder/optim"
)

// optional is a numeric flag that is either unset, meaning the method's
// default, or set to a value, zero included: -momentum 0 is no momentum
// for every method, whatever its default. It implements flag.Value.
type optional[T float64 | int] struct {
	val T
	set bool
}

// some returns an optional set to v.
func some[T float64 | int](v T) optional[T] { return optional[T]{val: v, set: true} }

// or returns the value when set, and def otherwise.
func (o optional[T]) or(def T) T {
	if o.set {
		return o.val
	}
	return def
}

// Set parses s.
func (o *optional[T]) Set(s string) error {
	switch p := any(&o.val).(type) {
	case *float64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("not a number")
		}
		*p = v
	case *int:
		v, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("not an integer")
		}
		*p = v
	}
	o.set = true
	return nil
}

// String returns the value, or "" when unset (so that -h prints no
// default).
func (o *optional[T]) String() string {
	if o == nil || !o.set {
		return ""
	}
	return fmt.Sprint(o.val)
}

// defaultBudget is -time when neither -time nor -updates is given.
const defaultBudget = 45 * time.Second

// methodDefault ends the usage of the flags whose default is the method's.
const methodDefault = " (default: the method's; see README)"

// newFlagSet returns the command's flags, writing into c, which it first
// sets to the defaults.
func newFlagSet(c *config, output io.Writer) *flag.FlagSet {
	*c = config{}
	fs := flag.NewFlagSet("autoencoder", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `autoencoder trains the deep autoencoder 784-1000-500-250-30-250-500-1000-784
of the thesis on MNIST with one of the library's optimizers (-opt), prints the
reconstruction errors as it goes and ends with a line
  final: updates=N seconds=S train_err=X test_err=Y
or reproduces a figure (-figure). Default: SGD for 45 s of training.

Usage: go run ./examples/autoencoder [flags]
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.arch, "arch", "784-1000-500-250-30-250-500-1000-784", "layer sizes; first and last must be 784")
	fs.IntVar(&c.updates, "updates", 0, "stop after this many updates (0: no limit); with -time, whichever comes first")
	fs.DurationVar(&c.budget, "time", defaultBudget, "stop after this much training time, 0 for no limit; left out, it is no limit when -updates is given")
	fs.IntVar(&c.batch, "batch", 100, "minibatch size")
	fs.StringVar(&c.opt, "opt", "sgd", methodsHelp())
	fs.Var(&c.lr, "lr", "learning rate `η` > 0"+methodDefault)
	fs.Var(&c.momentum, "momentum", "momentum `μ` in [0, 1), 0 for none; not adam's"+methodDefault)
	fs.BoolVar(&c.nesterov, "nesterov", false, "Nesterov momentum instead of classical momentum (-opt nesterov sets it)")
	fs.Var(&c.damping, "damping", "Tikhonov damping `λ` ≥ 0 of acp (absolute), kfac, ekfac and newton (relative), shampoo (relative to each factor), soap (Adam's ε), 0 for none"+methodDefault)
	fs.Var(&c.trust, "norm-constraint", "kfac, ekfac, acp, newton (shampoo, soap: none by default): trust region `C` > 0 relative to the risk, η² ∇ᵀU ≤ C R; +Inf for none"+methodDefault)
	fs.Var(&c.statsBatch, "stats-batch", "kfac, ekfac: examples of each batch whose Monte-Carlo Fisher vectors build the factors (Martens & Grosse's τ1 sub-batch), ≥ 1"+methodDefault)
	fs.Var(&c.statsPeriod, "stats-period", "kfac, ekfac: updates `N` ≥ 1 between updates of the factors' statistics (Martens & Grosse's T1); the Monte-Carlo backward pass runs only on those"+methodDefault)
	fs.BoolVar(&c.autoRate, "auto-rate", false, "kfac, ekfac: choose the rate and momentum of every update from the exact quadratic model (Martens & Grosse §7; two Gauss–Newton products per update)")
	fs.BoolVar(&c.adaptDamping, "adapt-damping", false, "kfac, ekfac: Levenberg–Marquardt adaptation of the damping (Martens & Grosse §6.5; a loss evaluation per update)")
	fs.Var(&c.alpha, "alpha", "fixed output-side scale `α` > 0 of acp and acp-fixed (default: acp the max-squared-gradient heuristic, acp-fixed 1)")
	fs.Var(&c.period, "period", "refresh period `N` ≥ 1 in updates: acp statistics, kfac inverses, ekfac, shampoo and soap eigenbases, newton blocks, nnn whitening"+methodDefault)
	fs.Var(&c.whitenEps, "whiten-eps", "nnn: whitening regularisation `ε` ≥ 0 relative to the mean input variance, U = (C + ε tr(C)/n I)^(-1/2) (default: 100, see README)")
	fs.StringVar(&c.norm, "norm", "none", "normalisation of the hidden layers: none, bn (batch normalisation) or meanbn (mean-only); first-order methods only")
	fs.Var(&c.maxParams, "max-params", fmt.Sprintf("largest layer, in `parameters`, that -opt newton accepts (default: %d, optim.DefaultNewtonMaxParams)", optim.DefaultNewtonMaxParams))
	fs.StringVar(&c.figure, "figure", "", "reproduce thesis figure 3.1 or 3.2, run the baselines, or race every method against the clock (race: errors on the full training set at 1, 5, 10, 30, 60 min): run each of its methods for -time and plot into -out")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed (initialisation and minibatch order)")
	fs.StringVar(&c.loss, "loss", "quadratic", "training loss: quadratic or bce")
	fs.StringVar(&c.init, "init", "sparse", "initialisation: sparse (Martens 2010), glorot or he")
	fs.Float64Var(&c.initScale, "init-scale", 0, "variance scale α of glorot/he, std of sparse (0: default)")
	fs.StringVar(&c.out, "out", "", "directory for log.csv, which must not exist yet (empty: no file); its seconds column is wall-clock training time")
	fs.StringVar(&c.mnist, "mnist", "", "directory holding the four MNIST IDX files, an error if it does not (empty: search $MNIST_DIR and the module cache)")
	fs.StringVar(&c.methods, "methods", "", "with -figure: train only these methods (-opt names, comma-separated; none: redraw from the logs) and take the others' curves from their logs under -out, if there; the figure's plots, table and race.csv are rewritten")
	fs.IntVar(&c.evalSize, "eval", 1000, "images of the train and test sets used for the periodic evaluations (-figure race: all, unless given)")
	fs.IntVar(&c.finalEval, "final-eval", 0, "images of the train and of the test set in the final evaluation (0: all, 60000 and 10000; it takes about 10 s with OpenBLAS, a minute or more in pure Go)")
	fs.DurationVar(&c.logEvery, "log-every", 10*time.Second, "training time between evaluations (ignored with -log-updates)")
	fs.IntVar(&c.logUpdates, "log-updates", 0, "evaluate every `N` updates instead of every -log-every, so that runs with the same -seed and -updates log the same rows")
	fs.StringVar(&c.checkpoint, "checkpoint", "", "directory `DIR` for checkpoints of the run (network, optimizer, minibatch order, random source), written every -checkpoint-every updates and at the end; it must not hold one yet, unless -resume")
	fs.IntVar(&c.checkpointEvery, "checkpoint-every", 500, "updates `N` between checkpoints")
	fs.BoolVar(&c.resume, "resume", false, "continue the run saved in -checkpoint DIR, with the same flags; -updates and -time count the total, and -out's log.csv is appended to")
	return fs
}

// parseFlags returns the configuration of the command line args (without
// the program name). On an error it has written the error and the usage to
// output; the error is flag.ErrHelp for -h.
func parseFlags(args []string, output io.Writer) (config, error) {
	var c config
	fs := newFlagSet(&c, output)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.evalSet = set["eval"]
	c.checkpointEverySet = set["checkpoint-every"]
	if c.updates > 0 && !set["time"] {
		// -updates N alone trains N updates, however long they take.
		c.budget = 0
	}
	if set["log-every"] && set["log-updates"] {
		err := errors.New("-log-every and -log-updates: give one of them")
		fmt.Fprintln(output, err)
		fs.Usage()
		return c, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments %q: flags only", strings.Join(fs.Args(), " "))
		fmt.Fprintln(output, err)
		fs.Usage()
		return c, err
	}
	return c, nil
}

// checkMethodFlags refuses the set values of the method flags that no
// method could take, with the flag's name; the optimizers' Validate checks
// the rest.
func (c config) checkMethodFlags() error {
	switch {
	case c.lr.set && c.lr.val == 0:
		return errors.New("-lr 0: want a positive learning rate (leave -lr out for the method's default)")
	case c.alpha.set && c.alpha.val == 0:
		return errors.New("-alpha 0: want a positive α (leave -alpha out for the method's default: acp's heuristic, acp-fixed's 1)")
	case c.trust.set && !(c.trust.val > 0):
		return fmt.Errorf("-norm-constraint %g: want > 0, +Inf for none (leave it out for the method's default)", c.trust.val)
	case c.statsBatch.set && c.statsBatch.val < 1:
		return fmt.Errorf("-stats-batch %d: want ≥ 1 (leave it out for the method's default)", c.statsBatch.val)
	case c.statsPeriod.set && c.statsPeriod.val < 1:
		return fmt.Errorf("-stats-period %d: want ≥ 1 (leave it out for the method's default)", c.statsPeriod.val)
	case c.period.set && c.period.val < 1:
		return fmt.Errorf("-period %d: want ≥ 1 (leave -period out for the method's default)", c.period.val)
	case c.whitenEps.set && (!(c.whitenEps.val >= 0) || math.IsInf(c.whitenEps.val, 1)):
		return fmt.Errorf("-whiten-eps %g: want finite and ≥ 0", c.whitenEps.val)
	case c.maxParams.set && c.maxParams.val < 1:
		return fmt.Errorf("-max-params %d: want ≥ 1", c.maxParams.val)
	}
	return nil
}

// undamped reports whether -damping 0 asks for no damping.
func (c config) undamped() bool { return c.damping.set && c.damping.val == 0 }

// methodFlags returns the method flags that were set, as on the command
// line, for error messages.
func (c config) methodFlags() string {
	var b strings.Builder
	add := func(name string, set bool, v any) {
		if set {
			fmt.Fprintf(&b, " -%s %v", name, v)
		}
	}
	add("lr", c.lr.set, c.lr.val)
	add("momentum", c.momentum.set, c.momentum.val)
	add("damping", c.damping.set, c.damping.val)
	add("norm-constraint", c.trust.set, c.trust.val)
	add("stats-batch", c.statsBatch.set, c.statsBatch.val)
	add("stats-period", c.statsPeriod.set, c.statsPeriod.val)
	add("alpha", c.alpha.set, c.alpha.val)
	add("period", c.period.set, c.period.val)
	add("whiten-eps", c.whitenEps.set, c.whitenEps.val)
	add("max-params", c.maxParams.set, c.maxParams.val)
	if c.nesterov {
		b.WriteString(" -nesterov")
	}
	if c.autoRate {
		b.WriteString(" -auto-rate")
	}
	if c.adaptDamping {
		b.WriteString(" -adapt-damping")
	}
	return b.String()
}
