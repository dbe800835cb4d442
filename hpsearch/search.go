package hpsearch

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"time"
)

// DefaultBudget is the number of experiments of a search whose Settings.Budget
// is zero, for methods without a size of their own: the size of the searches
// compared in thesis §2.3 (100 searches of 100 experiments).
const DefaultBudget = 100

// orDefaultBudget returns budget, or DefaultBudget when it is zero: the
// budget that Init of Random and Biased returns.
func orDefaultBudget(budget int) int {
	if budget == 0 {
		return DefaultBudget
	}
	return budget
}

var (
	// ErrNotFinite is wrapped by the error of a trial whose objective
	// returned NaN or ±Inf.
	ErrNotFinite = errors.New("hpsearch: objective returned a non-finite value")
	// ErrPanic is wrapped by the error of a trial whose objective panicked.
	ErrPanic = errors.New("hpsearch: objective panicked")
)

// Objective runs one experiment with the hyperparameters p and returns the
// criterion to minimise, e.g. a validation loss. An experiment fails when the
// objective returns an error, NaN or ±Inf, or panics; failures are recorded in
// the history and never stop the search. The objective should return promptly
// once ctx is done; an error returned after ctx is done marks the experiment
// as interrupted rather than failed (see Search). TrialIndex(ctx) is the
// index of the experiment.
//
// With Settings.Workers > 1 the objective is called from several goroutines at
// once.
type Objective func(ctx context.Context, p Point) (float64, error)

// Method proposes the experiments of a search: Grid, Random and Biased. A
// Method value keeps state set by Init and must not be used by two searches
// at the same time.
type Method interface {
	// Init prepares the method for a search of space s with the requested
	// budget (0 for the method's default) and returns the number of
	// experiments n of the search: the search runs the experiment indices
	// 0, …, n−1.
	Init(s *Space, budget int) (n int, err error)
	// Propose returns the point of experiment index, given the finished
	// experiments done (ordered by index; not to be kept or modified) and
	// a random source seeded for this index alone. Propose is called from
	// one goroutine at a time.
	Propose(index int, done []Trial, rng *rand.Rand) Point
}

// Settings configures Search. The zero value (or a nil *Settings) is a search
// of the method's default size on runtime.GOMAXPROCS(0) goroutines with seed
// 0, from an empty history, with no recording.
type Settings struct {
	// Budget is the total number of experiments, those restored from History
	// included. Zero means the method's default: the full grid for a Grid
	// with Counts, DefaultBudget otherwise.
	Budget int
	// Workers is the number of experiments run at the same time; default
	// runtime.GOMAXPROCS(0). With Workers = 1 a search is sequential and
	// reproducible: the same Seed gives the same history.
	Workers int
	// Seed seeds the random source. Experiment i is proposed with a source
	// derived from (Seed, i) alone, which makes an interrupted search
	// resumable exactly (see History).
	Seed uint64
	// History holds the trials of an earlier, interrupted run of the same
	// search, e.g. read back by ReadHistory. They are kept in the result,
	// count toward Budget and are not run again; the search runs the missing
	// indices below the method's size, in increasing order. A sequential
	// search (Workers = 1) resumed with the same Seed, method and Budget
	// produces the history an uninterrupted run would have.
	History []Trial
	// Recorder, if not nil, receives every trial as it finishes, in order of
	// completion, e.g. a JSONRecorder writing the history to a file: every
	// trial of Result.History not restored from History, including those
	// finishing after the context is done or after a Record error.
	Recorder Recorder
}

// Trial is one finished experiment of a search.
type Trial struct {
	// Index is the experiment's position in the search: 0, 1, ….
	Index int
	// Point holds the hyperparameters of the experiment.
	Point Point
	// Value is the objective's result; NaN when the experiment failed.
	Value float64
	// Err is non-nil when the experiment failed: the objective's error, or
	// one wrapping ErrNotFinite or ErrPanic. Errors restored by ReadHistory
	// keep only their message.
	Err error
	// Duration is the wall-clock time of the experiment.
	Duration time.Duration
}

// Failed reports whether the experiment failed.
func (t Trial) Failed() bool { return t.Err != nil }

// Result is the outcome of a search.
type Result struct {
	// History holds the finished trials, restored ones included, ordered by
	// Index.
	History []Trial
}

// Best returns the point and value of the best (lowest-valued) successful
// trial, the lowest index among equals, and false if no trial succeeded.
func (r *Result) Best() (p Point, value float64, ok bool) {
	t, ok := bestTrial(r.History)
	return t.Point, t.Value, ok
}

func bestTrial(h []Trial) (best Trial, ok bool) {
	for _, t := range h {
		if t.Failed() {
			continue
		}
		if !ok || t.Value < best.Value {
			best, ok = t, true
		}
	}
	return best, ok
}

// trialRand returns the random source of experiment index of a search with
// the given seed: a ChaCha8 generator keyed by (seed, index), so that every
// experiment's proposal is reproducible on its own, whatever ran before.
func trialRand(seed uint64, index int) *rand.Rand {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(index))
	copy(key[16:], "hpsearch/trial\x00\x00")
	return rand.New(rand.NewChaCha8(key))
}

// Search runs the experiments proposed by method m on the objective f over
// the space s and returns the history.
//
// Experiments run on Settings.Workers goroutines. Proposals are made in order
// of index by one goroutine, each from the history finished at proposal time:
// with W workers a proposal does not see the up to W−1 experiments still
// running, which a sequential search would have seen. Grid and Random do not
// look at the history, so their histories do not depend on Workers; with
// Biased and W > 1 the proposals may depend on the timing of the experiments,
// and only Workers = 1 is reproducible.
//
// When ctx is done, Search starts no new experiment, waits for the running
// ones to return, and returns the finished history with ctx's error. An
// experiment whose objective returns an error after ctx is done is considered
// interrupted: it is neither kept nor recorded, so a resumed search runs it
// again; one that returns a result is kept and recorded like any other.
// Search also stops starting experiments, and returns the error, when the
// Recorder fails; the experiments still running are kept and passed to the
// Recorder as they finish. So every trial of Result.History that this call
// ran, whatever happened, was passed to Settings.Recorder (the trials of
// Settings.History are not recorded again). Failed experiments are not errors
// of Search.
//
// Search returns an error without running anything when the settings are
// invalid, Init fails, or Settings.History does not fit the space or, for
// its trial 0 (proposed from the seed alone, before any result), is not the
// point that m proposes with this Seed: a history of another seed or method
// (two methods that propose the same first point, as Random and Biased do,
// cannot be told apart). It panics
// if s, f or m is nil.
func Search(ctx context.Context, s *Space, f Objective, m Method, settings *Settings) (*Result, error) {
	if s == nil || f == nil || m == nil {
		panic("hpsearch: Search needs a space, an objective and a method")
	}
	var set Settings
	if settings != nil {
		set = *settings
	}
	if set.Budget < 0 {
		return nil, fmt.Errorf("hpsearch: negative budget %d", set.Budget)
	}
	if set.Workers < 0 {
		return nil, fmt.Errorf("hpsearch: negative number of workers %d", set.Workers)
	}
	workers := set.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	n, err := m.Init(s, set.Budget)
	if err != nil {
		return nil, err
	}

	done := make([]Trial, 0, max(n, len(set.History)))
	seen := make(map[int]bool, len(set.History))
	for _, t := range set.History {
		if t.Index < 0 {
			return nil, fmt.Errorf("hpsearch: history has a negative index %d", t.Index)
		}
		if seen[t.Index] {
			return nil, fmt.Errorf("hpsearch: history has index %d twice", t.Index)
		}
		if !s.sameAs(t.Point.space) {
			return nil, fmt.Errorf("hpsearch: history trial %d is not a point of this space", t.Index)
		}
		seen[t.Index] = true
		done = append(done, t)
	}
	sort.Slice(done, func(a, b int) bool { return done[a].Index < done[b].Index })
	if len(done) > 0 && done[0].Index == 0 {
		// Experiment 0 is proposed before any result, from the seed
		// alone, in every run of a search: proposing it again tells a
		// history of another seed or method.
		p := m.Propose(0, nil, trialRand(set.Seed, 0))
		if !slices.Equal(p.values, done[0].Point.values) {
			return nil, fmt.Errorf("hpsearch: history trial 0 is %v, but this method proposes %v with seed %d: the history comes from a search with another seed or method", done[0].Point, p, set.Seed)
		}
	}
	var queue []int
	for i := range n {
		if !seen[i] {
			queue = append(queue, i)
		}
	}

	type outcome struct {
		t           Trial
		interrupted bool
	}
	results := make(chan outcome)
	running := 0
	interrupted := false
	var stop, recErr error
	for {
		for stop == nil && len(queue) > 0 && running < workers {
			if err := ctx.Err(); err != nil {
				stop = err
				break
			}
			i := queue[0]
			queue = queue[1:]
			p := m.Propose(i, done, trialRand(set.Seed, i))
			running++
			go func() {
				t, ok := runTrial(ctx, f, i, p)
				results <- outcome{t: t, interrupted: !ok}
			}()
		}
		if running == 0 {
			break
		}
		o := <-results
		running--
		if o.interrupted {
			interrupted = true
			continue
		}
		done = insertTrial(done, o.t)
		// Every kept trial goes to the recorder, also those finishing
		// after ctx is done or after the recorder failed, so that the
		// recorded history is Result.History less Settings.History.
		if set.Recorder != nil {
			if err := set.Recorder.Record(o.t); err != nil && recErr == nil {
				recErr = fmt.Errorf("hpsearch: recording experiment %d: %w", o.t.Index, err)
				if stop == nil {
					stop = recErr
				}
			}
		}
	}
	if stop == nil && interrupted {
		stop = ctx.Err()
	}
	if recErr != nil && stop != recErr {
		stop = errors.Join(stop, recErr)
	}
	return &Result{History: done}, stop
}

// indexKey is the context key of TrialIndex.
type indexKey struct{}

// TrialIndex returns the index of the experiment (Trial.Index) whose
// objective received ctx, and false for a context that Search did not pass
// to an objective. An objective can use it to seed the experiment's own
// randomness by index, so that a resumed search, which runs only the missing
// indices, repeats the experiments of an uninterrupted one.
func TrialIndex(ctx context.Context) (int, bool) {
	i, ok := ctx.Value(indexKey{}).(int)
	return i, ok
}

// insertTrial inserts t into h, which is ordered by index.
func insertTrial(h []Trial, t Trial) []Trial {
	k := sort.Search(len(h), func(a int) bool { return h[a].Index > t.Index })
	h = append(h, Trial{})
	copy(h[k+1:], h[k:])
	h[k] = t
	return h
}

// runTrial runs experiment i at p. It reports false when the objective
// returned an error after ctx was done.
func runTrial(ctx context.Context, f Objective, i int, p Point) (t Trial, ok bool) {
	start := time.Now()
	t = Trial{Index: i, Point: p, Value: math.NaN()}
	defer func() {
		if r := recover(); r != nil {
			t.Value = math.NaN()
			t.Err = fmt.Errorf("%w: %v", ErrPanic, r)
			t.Duration = time.Since(start)
			ok = true
		}
	}()
	v, err := f(context.WithValue(ctx, indexKey{}, i), p)
	t.Duration = time.Since(start)
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return t, false
		}
		t.Err = err
	case math.IsNaN(v) || math.IsInf(v, 0):
		t.Err = fmt.Errorf("%w: %v", ErrNotFinite, v)
	default:
		t.Value = v
	}
	return t, true
}
