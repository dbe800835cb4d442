package hpsearch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// indexRecorder keeps the indices of the recorded trials and can fail on its
// n-th call.
type indexRecorder struct {
	mu      sync.Mutex
	indices []int
	failAt  int           // 1-based call that fails; 0: never
	failed  chan struct{} // closed at the failing call
}

func (r *indexRecorder) Record(t Trial) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.indices = append(r.indices, t.Index)
	if len(r.indices) == r.failAt {
		close(r.failed)
		return errors.New("disk full")
	}
	return nil
}

// sameIndices checks that the recorded indices are those of the history, once
// each.
func sameIndices(t *testing.T, what string, rec *indexRecorder, h []Trial) {
	t.Helper()
	got := append([]int(nil), rec.indices...)
	sort.Ints(got)
	var want []int
	for _, tr := range h {
		want = append(want, tr.Index)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: recorded indices %v, history indices %v", what, got, want)
	}
	for k := range got {
		if got[k] != want[k] {
			t.Fatalf("%s: recorded indices %v, history indices %v", what, got, want)
		}
	}
}

// TestRecordAfterCancel cancels searches from inside an experiment that then
// returns a result, while other experiments are running: every trial kept in
// Result.History, those finishing after the cancellation included, reaches
// the recorder, and interrupted experiments reach neither.
func TestRecordAfterCancel(t *testing.T) {
	s := bowlSpace(t)
	for _, workers := range []int{1, 2, 4} {
		for _, interruptOthers := range []bool{false, true} {
			ctx, cancel := context.WithCancel(context.Background())
			var calls atomic.Int64
			f := func(ctx context.Context, p Point) (float64, error) {
				switch n := calls.Add(1); {
				case n == 6:
					cancel() // and finish with a result
				case n > 6:
					<-ctx.Done()
					if interruptOthers && n%2 == 0 {
						return 0, ctx.Err()
					}
				}
				return bowl(ctx, p)
			}
			rec := &indexRecorder{}
			res, err := Search(ctx, s, f, &Random{}, &Settings{Budget: 50, Workers: workers, Seed: 3, Recorder: rec})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("workers %d: error %v, want context.Canceled", workers, err)
			}
			if n := len(res.History); n < 6 || n > 6+workers-1 {
				t.Fatalf("workers %d: %d trials kept", workers, n)
			}
			sameIndices(t, fmt.Sprintf("workers %d, interrupt %v", workers, interruptOthers), rec, res.History)
			cancel()
		}
	}
}

// TestRecordAfterRecorderError makes the recorder fail on the first trial
// while other experiments run: the search starts nothing new, returns the
// recorder's error, and the running experiments are kept and still passed to
// the recorder.
func TestRecordAfterRecorderError(t *testing.T) {
	s := bowlSpace(t)
	rec := &indexRecorder{failAt: 1, failed: make(chan struct{})}
	f := func(ctx context.Context, p Point) (float64, error) {
		if i, _ := TrialIndex(ctx); i > 0 {
			<-rec.failed
		}
		return bowl(ctx, p)
	}
	res, err := Search(context.Background(), s, f, &Random{}, &Settings{Budget: 20, Workers: 3, Recorder: rec})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v, want the recorder's", err)
	}
	if len(res.History) != 3 {
		t.Fatalf("%d trials kept, want the 3 started", len(res.History))
	}
	sameIndices(t, "failing recorder", rec, res.History)

	// Cancelled, and the recorder fails on a trial finishing after that:
	// both errors are returned. Of the two experiments started, one
	// cancels; the other finishes after the cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec = &indexRecorder{failAt: 2, failed: make(chan struct{})}
	var calls atomic.Int64
	g := func(ctx context.Context, p Point) (float64, error) {
		if calls.Add(1) == 1 {
			cancel()
		} else {
			<-ctx.Done()
		}
		return bowl(ctx, p)
	}
	res, err = Search(ctx, s, g, &Random{}, &Settings{Budget: 20, Workers: 2, Recorder: rec})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v, want context.Canceled and the recorder's", err)
	}
	if len(res.History) != 2 {
		t.Fatalf("%d trials kept, want the 2 started", len(res.History))
	}
	sameIndices(t, "cancelled, failing recorder", rec, res.History)
}

// TestTrialIndex checks that the objective sees the index of its experiment
// in its context, also in a resumed search with gaps.
func TestTrialIndex(t *testing.T) {
	if _, ok := TrialIndex(context.Background()); ok {
		t.Fatal("TrialIndex of a background context")
	}
	s := bowlSpace(t)
	full, err := Search(context.Background(), s, bowl, &Random{}, &Settings{Budget: 10, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	hist := []Trial{full.History[7], full.History[2], full.History[3]}
	var mu sync.Mutex
	seen := map[int]string{}
	f := func(ctx context.Context, p Point) (float64, error) {
		i, ok := TrialIndex(ctx)
		if !ok {
			return 0, errors.New("no index")
		}
		mu.Lock()
		defer mu.Unlock()
		seen[i] = p.String()
		return bowl(ctx, p)
	}
	res, err := Search(context.Background(), s, f, &Random{}, &Settings{Budget: 10, Workers: 3, Seed: 5, History: hist})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 7 {
		t.Fatalf("objective saw indices %v, want the 7 missing ones", seen)
	}
	for _, tr := range res.History {
		p, ran := seen[tr.Index]
		restored := tr.Index == 2 || tr.Index == 3 || tr.Index == 7
		if ran == restored || (ran && p != tr.Point.String()) {
			t.Fatalf("trial %d at %v: objective saw %q (ran %v)", tr.Index, tr.Point, p, ran)
		}
	}
}

// shortFile fails its n-th Write after writing half the bytes, as a full
// disk would.
type shortFile struct {
	*os.File
	n, calls int
}

func (f *shortFile) Write(b []byte) (int, error) {
	f.calls++
	if f.calls == f.n {
		k, _ := f.File.Write(b[:len(b)/2])
		return k, errors.New("disk full")
	}
	return f.File.Write(b)
}

// TestJSONRecorderShortWrite records after a short write: the partial record
// is removed, and the file reads back with every other record.
func TestJSONRecorderShortWrite(t *testing.T) {
	s := bowlSpace(t)
	res, err := Search(context.Background(), s, bowl, &Random{}, &Settings{Budget: 6, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "h.jsonl")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rec := NewJSONRecorder(&shortFile{File: f, n: 3})
	var want []Trial
	for _, tr := range res.History {
		if err := rec.Record(tr); err != nil {
			if tr.Index != 2 {
				t.Fatalf("trial %d: %v", tr.Index, err)
			}
			continue
		}
		want = append(want, tr)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, tail, err := ReadHistoryTail(strings.NewReader(string(data)), s)
	if err != nil || tail != nil {
		t.Fatalf("after a short write: %v, partial %q\n%s", err, tail, data)
	}
	sameTrials(t, got, want)
}
