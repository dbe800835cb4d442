package hpsearch

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestFailuresRecorded runs searches whose objective fails in four ways and
// checks that every experiment is in the history, failures with their cause,
// and that the best value comes from a successful one.
func TestFailuresRecorded(t *testing.T) {
	s := mustSpace(t, Param{Name: "x", Min: 0, Max: 1})
	f := func(_ context.Context, p Point) (float64, error) {
		x := p.Get("x")
		switch {
		case x < 0.2:
			return 0, errors.New("diverged")
		case x < 0.4:
			return math.NaN(), nil
		case x < 0.5:
			return math.Inf(-1), nil
		case x < 0.6:
			panic("boom")
		}
		return x, nil
	}
	for _, m := range []Method{&Random{}, &Biased{}, &Biased{Model: KNN{}}, &Grid{}} {
		for _, workers := range []int{1, 3} {
			res, err := Search(context.Background(), s, f, m, &Settings{Budget: 60, Workers: workers, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.History) != 60 {
				t.Fatalf("%T: %d trials, want 60", m, len(res.History))
			}
			var failed int
			for i, tr := range res.History {
				if tr.Index != i {
					t.Fatalf("%T: trial %d has index %d", m, i, tr.Index)
				}
				x := tr.Point.Get("x")
				var want string
				switch {
				case x < 0.2:
					want = "diverged"
				case x < 0.4:
					want = "non-finite value: NaN"
				case x < 0.5:
					want = "non-finite value: -Inf"
				case x < 0.6:
					want = "objective panicked: boom"
				}
				if want == "" {
					if tr.Failed() || tr.Value != x {
						t.Fatalf("%T: trial at %v: value %v, error %v", m, x, tr.Value, tr.Err)
					}
					continue
				}
				failed++
				if !tr.Failed() || !math.IsNaN(tr.Value) || !strings.Contains(tr.Err.Error(), want) {
					t.Fatalf("%T: trial at %v: value %v, error %v, want an error containing %q", m, x, tr.Value, tr.Err, want)
				}
				if strings.Contains(want, "panicked") && !errors.Is(tr.Err, ErrPanic) ||
					strings.Contains(want, "non-finite") && !errors.Is(tr.Err, ErrNotFinite) {
					t.Fatalf("%T: error %v does not wrap the sentinel", m, tr.Err)
				}
			}
			if failed == 0 {
				t.Fatalf("%T: no failure exercised", m)
			}
			p, v, ok := res.Best()
			if !ok || v < 0.6 || p.Get("x") != v {
				t.Fatalf("%T: Best() = %v, %v, %v", m, p, v, ok)
			}
		}
	}

	// All experiments failing: the search finishes and Best reports none.
	fail := func(context.Context, Point) (float64, error) { return 0, errors.New("no") }
	res, err := Search(context.Background(), s, fail, &Biased{}, &Settings{Budget: 10})
	if err != nil || len(res.History) != 10 {
		t.Fatalf("all failing: %v, %d trials", err, len(res.History))
	}
	if _, _, ok := res.Best(); ok {
		t.Fatal("Best() reports a best point when all failed")
	}
}

// TestCancel cancels a search whose experiments block until the context is
// done, and checks that it returns promptly with the finished experiments
// and the context's error, and without the interrupted ones.
func TestCancel(t *testing.T) {
	s := bowlSpace(t)
	for _, workers := range []int{1, 4} {
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int64
		f := func(ctx context.Context, p Point) (float64, error) {
			if calls.Add(1) > 5 {
				cancel()
				select {
				case <-ctx.Done():
					return 0, ctx.Err()
				case <-time.After(time.Minute):
				}
			}
			return bowl(ctx, p)
		}
		start := time.Now()
		res, err := Search(ctx, s, f, &Biased{}, &Settings{Budget: 1000, Workers: workers})
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Fatalf("workers %d: cancelled search took %v", workers, elapsed)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("workers %d: error %v, want context.Canceled", workers, err)
		}
		if n := len(res.History); n < 5 || n > 5+workers {
			t.Fatalf("workers %d: %d trials after cancellation", workers, n)
		}
		for _, tr := range res.History {
			if tr.Failed() {
				t.Fatalf("workers %d: interrupted trial %d kept: %v", workers, tr.Index, tr.Err)
			}
		}
		cancel()
	}
}

// TestBiasedParallel checks that a biased search on several workers runs
// every index once.
func TestBiasedParallel(t *testing.T) {
	s := rosenbrockSpace(t)
	res, err := Search(context.Background(), s, rosenbrock, &Biased{}, &Settings{Budget: 64, Workers: 4, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.History) != 64 {
		t.Fatalf("%d trials, want 64", len(res.History))
	}
	for i, tr := range res.History {
		if tr.Index != i {
			t.Fatalf("trial %d has index %d", i, tr.Index)
		}
	}
}

// TestSequentialReproducible checks that Workers = 1 and a seed give the same
// biased history twice, and another seed a different one.
func TestSequentialReproducible(t *testing.T) {
	s := bowlSpace(t)
	run := func(seed uint64) []Trial {
		res, err := Search(context.Background(), s, bowl, &Biased{Model: KNN{}}, &Settings{Budget: 30, Workers: 1, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return res.History
	}
	a := run(9)
	sameTrials(t, run(9), a)
	if b := run(10); b[0].Point.String() == a[0].Point.String() {
		t.Fatal("seeds 9 and 10 give the same first point")
	}
}

type failingRecorder struct{ n int }

func (r *failingRecorder) Record(Trial) error {
	r.n++
	if r.n == 3 {
		return errors.New("disk full")
	}
	return nil
}

func TestSearchErrors(t *testing.T) {
	s := bowlSpace(t)
	for _, set := range []*Settings{{Budget: -1}, {Workers: -1}} {
		if _, err := Search(context.Background(), s, bowl, &Random{}, set); err == nil {
			t.Errorf("settings %+v accepted", *set)
		}
	}
	other := mustSpace(t, Param{Name: "x", Max: 1})
	hist := []Trial{{Index: 0, Point: other.FromUnit([]float64{0.5}), Value: 1}}
	if _, err := Search(context.Background(), s, bowl, &Random{}, &Settings{History: hist}); err == nil {
		t.Error("history from another space accepted")
	}
	p := s.FromUnit([]float64{0.5, 0.5})
	hist = []Trial{{Index: 1, Point: p}, {Index: 1, Point: p}}
	if _, err := Search(context.Background(), s, bowl, &Random{}, &Settings{History: hist}); err == nil {
		t.Error("history with a repeated index accepted")
	}

	rec := &failingRecorder{}
	res, err := Search(context.Background(), s, bowl, &Random{}, &Settings{Budget: 20, Workers: 1, Recorder: rec})
	if err == nil || !strings.Contains(err.Error(), "disk full") || len(res.History) != 3 {
		t.Fatalf("failing recorder: error %v, %d trials", err, len(res.History))
	}
}

// TestResumeOtherSeedOrMethod resumes a recorded random search with the
// same settings (accepted), another seed and another method (refused
// before any experiment runs), and a history without trial 0 (not
// checkable, accepted).
func TestResumeOtherSeedOrMethod(t *testing.T) {
	s := bowlSpace(t)
	first, err := Search(context.Background(), s, bowl, &Random{}, &Settings{Budget: 4, Workers: 1, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	hist := first.History[:2]
	for _, tc := range []struct {
		name string
		m    Method
		seed uint64
		hist []Trial
		ok   bool
	}{
		{"same", &Random{}, 3, hist, true},
		{"biased, same seed", &Biased{}, 3, hist, true},
		{"other seed", &Random{}, 4, hist, false},
		{"grid", &Grid{Counts: []int{2, 2}}, 3, hist, false},
		{"no trial 0", &Random{}, 4, first.History[1:2], true},
	} {
		ran := 0
		f := func(ctx context.Context, p Point) (float64, error) { ran++; return bowl(ctx, p) }
		_, err := Search(context.Background(), s, f, tc.m, &Settings{Budget: 4, Workers: 1, Seed: tc.seed, History: tc.hist})
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "another seed or method")):
			t.Errorf("%s: error %v, want one naming another seed or method", tc.name, err)
		case !tc.ok && ran > 0:
			t.Errorf("%s: %d experiments ran before the refusal", tc.name, ran)
		}
	}
}
