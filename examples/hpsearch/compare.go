package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/secondorder/secondorder/hpsearch"
)

// searchResult is one finished search.
type searchResult struct {
	method   string
	search   int
	history  []hpsearch.Trial
	best     float64 // NaN when every experiment failed
	point    hpsearch.Point
	ok       bool
	restored int // experiments read back from the recorded history
	elapsed  time.Duration
}

// comparison holds the finished searches of every method.
type comparison struct {
	methods     []string
	searches    int // requested per method
	experiments int // requested per search
	space       *hpsearch.Space
	results     map[string][]*searchResult // [method][search], nil when not finished
	elapsed     time.Duration
	workers     int
	setting     string
	command     string
}

// finished returns the finished searches of all methods.
func (c *comparison) finished() []*searchResult {
	var all []*searchResult
	for _, m := range c.methods {
		for _, r := range c.results[m] {
			if r != nil {
				all = append(all, r)
			}
		}
	}
	return all
}

// searchSeed returns the hpsearch seed of search s of a method, a SplitMix64
// mix of the seed, the method and s: the methods propose independently, so
// that their best results are independent samples (as Welch's test
// assumes).
func searchSeed(seed uint64, method string, s int) uint64 {
	z := seed
	for _, b := range []byte(method) {
		z = z*0x100000001b3 ^ uint64(b)
	}
	z += uint64(s+1) * 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// job is one search to run.
type job struct {
	method string
	search int
}

// compare runs c.searches searches of every method on c.workers goroutines,
// search by search (all methods of search 0, then of search 1, …) so that an
// interrupted run keeps comparable numbers of searches per method. It prints
// one line per finished search to w.
func compare(ctx context.Context, c config, methods []string, space *hpsearch.Space, tk *task, w io.Writer) (*comparison, error) {
	cmp := &comparison{
		methods: methods, searches: c.searches, experiments: c.experiments,
		space: space, results: map[string][]*searchResult{}, workers: c.workers, command: c.command,
	}
	for _, m := range methods {
		cmp.results[m] = make([]*searchResult, c.searches)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job)
	done := make(chan *searchResult)
	errs := make(chan error, c.workers)
	var wg sync.WaitGroup
	for range c.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := newTrainer(tk)
			for j := range jobs {
				r, err := runSearch(ctx, c, space, tr, j)
				if err != nil {
					errs <- err
					cancel()
					return
				}
				done <- r
			}
		}()
	}
	go func() {
		defer close(jobs)
		for s := range c.searches {
			for _, m := range methods {
				select {
				case jobs <- job{m, s}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	go func() {
		wg.Wait()
		close(done)
	}()

	start := time.Now()
	total := c.searches * len(methods)
	n := 0
	for r := range done {
		n++
		cmp.results[r.method][r.search] = r
		el := time.Since(start)
		eta := time.Duration(float64(el) / float64(n) * float64(total-n))
		best := "no successful experiment"
		if r.ok {
			best = fmt.Sprintf("best %8.4f at lr=%.3g α=%.3g", r.best, r.point.Get("lr"), r.point.Get("alpha"))
		}
		restored := ""
		if r.restored > 0 {
			restored = fmt.Sprintf(", %d of them recorded earlier,", r.restored)
		}
		fmt.Fprintf(w, "[%*d/%d] %-6s search %*d/%d: %s  (%d experiments%s in %.1fs; elapsed %s, ETA %s)\n",
			digits(total), n, total, r.method, digits(c.searches), r.search+1, c.searches, best,
			len(r.history), restored, r.elapsed.Seconds(), el.Round(time.Second), eta.Round(time.Second))
	}
	cmp.elapsed = time.Since(start)
	close(errs)
	if err := parent.Err(); err != nil {
		hint := ""
		if c.out != "" {
			hint = fmt.Sprintf(" (the run recorded in %s continues with -resume)", c.out)
		}
		return cmp, fmt.Errorf("interrupted after %d of %d searches%s: %w", n, total, hint, err)
	}
	return cmp, <-errs // nil when no worker failed
}

func digits(n int) int { return len(fmt.Sprint(n)) }

// runSearch runs search j.search of method j.method on the trainer tr.
// The experiments run one after the other, in order of index; experiment k
// draws from experimentRand(seed, search, k). Under c.out the search
// continues the history recorded in its file (empty for a new run) and
// records every experiment there as it finishes.
func runSearch(ctx context.Context, c config, space *hpsearch.Space, tr *trainer, j job) (r *searchResult, err error) {
	start := time.Now()
	fail := func(err error) error { return fmt.Errorf("%s search %d: %w", j.method, j.search+1, err) }
	set := &hpsearch.Settings{Budget: c.experiments, Workers: 1, Seed: searchSeed(c.seed, j.method, j.search)}
	if c.out != "" {
		path := historyPath(c.out, j.method, j.search)
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fail(err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				r, err = nil, fail(cerr)
			}
		}()
		if set.History, err = hpsearch.ReadHistory(f, space); err != nil {
			return nil, fail(fmt.Errorf("%s: %w", path, err))
		}
		set.Recorder = hpsearch.NewJSONRecorder(f)
	}
	obj := func(ctx context.Context, p hpsearch.Point) (float64, error) {
		index, _ := hpsearch.TrialIndex(ctx)
		v, err := tr.run(ctx, p.Get("lr"), p.Get("alpha"), experimentRand(c.seed, j.search, index))
		if c.onExperiment != nil {
			c.onExperiment(err)
		}
		return v, err
	}
	res, err := hpsearch.Search(ctx, space, obj, newMethod(j.method), set)
	if err != nil {
		return nil, fail(err)
	}
	r = &searchResult{method: j.method, search: j.search, history: res.History, restored: len(set.History), elapsed: time.Since(start)}
	r.point, r.best, r.ok = res.Best()
	if !r.ok {
		r.best = math.NaN()
	}
	return r, nil
}

// methodStats summarises the best results of the searches of one method.
type methodStats struct {
	method      string
	bests       []float64 // best result of each search with one
	searches    int       // finished searches
	experiments int       // experiments per search (the largest)
	failed      int       // failed experiments, over all searches
	mean, sd    float64   // NaN when undefined
}

func (c *comparison) stats(method string) methodStats {
	st := methodStats{method: method}
	for _, r := range c.results[method] {
		if r == nil {
			continue
		}
		st.searches++
		st.experiments = max(st.experiments, len(r.history))
		for _, t := range r.history {
			if t.Failed() {
				st.failed++
			}
		}
		if r.ok {
			st.bests = append(st.bests, r.best)
		}
	}
	st.mean, st.sd = meanSD(st.bests)
	return st
}

// representative returns the search of method whose best result is the
// median of the method's searches (the lower median for an even number),
// nil when none finished.
func (c *comparison) representative(method string) *searchResult {
	var rs []*searchResult
	for _, r := range c.results[method] {
		if r != nil && r.ok {
			rs = append(rs, r)
		}
	}
	if len(rs) == 0 {
		return nil
	}
	sort.SliceStable(rs, func(a, b int) bool { return rs[a].best < rs[b].best })
	return rs[(len(rs)-1)/2]
}
