package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// optional is a numeric flag that is either unset, meaning the optimizer's
// zero value (its documented default), or set to a value, zero included:
// -momentum 0 is no momentum and -damping 0 no damping, whatever the
// default. It implements flag.Value.
type optional[T float64 | int] struct {
	val T
	set bool
}

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
const defaultBudget = 30 * time.Second

// zeroValue ends the usage of the flags whose default is the optimizer's.
const zeroValue = " (default: the optimizer's zero value, see -opt)"

// newFlagSet returns the command's flags, writing into c, which it first
// sets to the defaults.
func newFlagSet(c *config, output io.Writer) *flag.FlagSet {
	*c = config{}
	fs := flag.NewFlagSet("classifier", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `classifier trains an MNIST classifier (an MLP with softmax and cross-entropy,
-arch) with any optimizer of the library at its zero value (-opt), prints the
test loss and accuracy as it goes and ends with a line
  final: updates=N seconds=S train_loss=L test_loss=T test_acc=A%
A template to copy for a classifier of your own.

Usage: go run ./examples/classifier [flags]
`)
		fs.PrintDefaults()
	}
	fs.StringVar(&c.arch, "arch", "784-100-10", "layer sizes; the first must be 784 (pixels) and the last 10 (classes)")
	fs.StringVar(&c.act, "act", "relu", "activation of the hidden layers: relu (He initialisation) or tanh (Glorot)")
	fs.IntVar(&c.updates, "updates", 0, "stop after this many updates (0: no limit); with -time, whichever comes first")
	fs.DurationVar(&c.budget, "time", defaultBudget, "stop after this much training time, 0 for no limit; left out, it is no limit when -updates is given")
	fs.IntVar(&c.batch, "batch", 100, "minibatch size")
	fs.StringVar(&c.opt, "opt", "adam", methodsHelp())
	fs.Var(&c.lr, "lr", "learning rate `η` > 0"+zeroValue)
	fs.Var(&c.momentum, "momentum", "momentum `μ` in [0, 1), 0 for none; not adam's"+zeroValue)
	fs.Var(&c.damping, "damping", "Tikhonov damping `λ` ≥ 0 of acp (absolute), kfac, ekfac and newton (relative), shampoo (relative to each factor), soap (Adam's ε), 0 for none"+zeroValue)
	fs.Uint64Var(&c.seed, "seed", 1, "random seed (initialisation, minibatch order, sampled targets)")
	fs.StringVar(&c.out, "out", "", "directory for log.csv and curve.png, which must not exist yet (empty: no files); the seconds column is wall-clock training time")
	fs.StringVar(&c.mnist, "mnist", "", "directory holding the four MNIST IDX files, an error if it does not (empty: search $MNIST_DIR and the module cache)")
	fs.DurationVar(&c.logEvery, "log-every", 5*time.Second, "training time between evaluations, 0 for only at the start and the end (ignored with -log-updates)")
	fs.IntVar(&c.logUpdates, "log-updates", 0, "evaluate every `N` updates instead of every -log-every, so that runs with the same -seed and -updates log the same rows")
	fs.StringVar(&c.checkpoint, "checkpoint", "", "directory `DIR` for checkpoints of the run (network, optimizer, minibatch order, random source), written every -checkpoint-every updates and at the end; it must not hold one yet, unless -resume")
	fs.IntVar(&c.checkpointEvery, "checkpoint-every", 500, "updates `N` between checkpoints")
	fs.BoolVar(&c.resume, "resume", false, "continue the run saved in -checkpoint DIR, with the same flags; -updates and -time count the total, and -out's log.csv is appended to (curve.png redrawn)")
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

// checkMethodFlags refuses -lr 0 (zero would silently mean the default) and
// the method flags that the method c.opt does not have; the optimizer's
// Validate checks the values.
func (c config) checkMethodFlags(m method) error {
	if c.lr.set && c.lr.val == 0 {
		return errors.New("-lr 0: want a positive learning rate (leave -lr out for the optimizer's default)")
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"momentum", c.momentum.set}, {"damping", c.damping.set}} {
		if f.set && !strings.Contains(" "+m.flags+" ", " "+f.name+" ") {
			return fmt.Errorf("-%s does not apply to -opt %s (its flags: %s)", f.name, m.name, strings.Join(strings.Fields("lr "+m.flags), ", "))
		}
	}
	return nil
}

// undamped reports whether -damping 0 asks for no damping.
func (c config) undamped() bool { return c.damping.set && c.damping.val == 0 }

// methodFlags returns the method flags that were set, as on the command
// line, for error messages.
func (c config) methodFlags() string {
	var b strings.Builder
	add := func(name string, o optional[float64]) {
		if o.set {
			fmt.Fprintf(&b, " -%s %v", name, o.val)
		}
	}
	add("lr", c.lr)
	add("momentum", c.momentum)
	add("damping", c.damping)
	return b.String()
}
