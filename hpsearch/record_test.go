package hpsearch

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// failingRosenbrock is rosenbrock with deterministic failures.
func failingRosenbrock(ctx context.Context, p Point) (float64, error) {
	if p.Get("a") > 30 {
		return 0, errors.New("too large")
	}
	if p.Get("b") < 0.03 {
		return math.NaN(), nil
	}
	return rosenbrock(ctx, p)
}

var durationField = regexp.MustCompile(`,"duration":"[^"]*"`)

// TestResume interrupts sequential searches after k experiments, resumes them
// from their recorded history with the same seed, and checks that history and
// file equal those of an uninterrupted run.
func TestResume(t *testing.T) {
	s := rosenbrockSpace(t)
	const budget = 40
	for _, tc := range []struct {
		name string
		mk   func() Method
		k    int
	}{
		{"biased 1-NN", func() Method { return &Biased{} }, 15},
		{"biased 1-NN first", func() Method { return &Biased{} }, 1},
		{"biased KNN", func() Method { return &Biased{Model: KNN{K: 3}} }, 27},
		{"random", func() Method { return &Random{} }, 10},
		{"grid", func() Method { return &Grid{} }, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := func(rec Recorder, hist []Trial) *Settings {
				return &Settings{Budget: budget, Workers: 1, Seed: 42, Recorder: rec, History: hist}
			}
			var full bytes.Buffer
			want, err := Search(context.Background(), s, failingRosenbrock, tc.mk(), set(NewJSONRecorder(&full), nil))
			if err != nil {
				t.Fatal(err)
			}
			var failed int
			for _, tr := range want.History {
				if tr.Failed() {
					failed++
				}
			}
			if failed == 0 {
				t.Fatal("no failed experiment to restore")
			}

			// Interrupted run: the (k+1)-th experiment sees the context
			// cancelled and is dropped.
			var part bytes.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var calls atomic.Int64
			interrupt := func(ctx context.Context, p Point) (float64, error) {
				if calls.Add(1) > int64(tc.k) {
					cancel()
					return 0, ctx.Err()
				}
				return failingRosenbrock(ctx, p)
			}
			got, err := Search(ctx, s, interrupt, tc.mk(), set(NewJSONRecorder(&part), nil))
			if !errors.Is(err, context.Canceled) || len(got.History) != tc.k {
				t.Fatalf("interrupted run: error %v, %d trials, want context.Canceled and %d", err, len(got.History), tc.k)
			}

			// Resume from the file, appending to it.
			hist, err := ReadHistory(bytes.NewReader(part.Bytes()), s)
			if err != nil {
				t.Fatal(err)
			}
			sameTrials(t, hist, got.History)
			res, err := Search(context.Background(), s, failingRosenbrock, tc.mk(), set(NewJSONRecorder(&part), hist))
			if err != nil {
				t.Fatal(err)
			}
			sameTrials(t, res.History, want.History)
			if g, w := durationField.ReplaceAllString(part.String(), ""), durationField.ReplaceAllString(full.String(), ""); g != w {
				t.Fatalf("resumed file\n%s\ndiffers from uninterrupted file\n%s", g, w)
			}
		})
	}
}

// TestResumeGaps resumes a parallel search whose history misses some indices:
// the missing ones below the budget are run, the restored ones kept.
func TestResumeGaps(t *testing.T) {
	s := bowlSpace(t)
	full, err := Search(context.Background(), s, bowl, &Random{}, &Settings{Budget: 8, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	var hist []Trial
	for _, i := range []int{6, 0, 1, 3} {
		hist = append(hist, full.History[i])
	}
	res, err := Search(context.Background(), s, bowl, &Random{}, &Settings{Budget: 8, Workers: 3, Seed: 4, History: hist})
	if err != nil {
		t.Fatal(err)
	}
	// Random proposals depend only on (seed, index): the same history.
	sameTrials(t, res.History, full.History)
}

func TestHistoryRoundTrip(t *testing.T) {
	s := mustSpace(t,
		Param{Name: "lr", Min: 1e-5, Max: 1, Scale: Log},
		Param{Name: "batch", Min: 1, Max: 1024, Scale: Log, Integer: true},
	)
	trials := []Trial{
		{Index: 2, Point: s.FromUnit([]float64{0.123456789, 0.5}), Value: 0.1 + 0.2, Duration: 1234567891 * time.Nanosecond},
		{Index: 0, Point: s.FromUnit([]float64{1, 0}), Value: math.NaN(), Err: errors.New(`diverged: "loss" = inf`), Duration: time.Millisecond},
		{Index: 5, Point: s.FromUnit([]float64{0, 1}), Value: math.NaN(), Err: ErrNotFinite},
		{Index: 7, Point: s.FromUnit([]float64{0.3, 0.7}), Value: -1e300},
	}
	var buf bytes.Buffer
	if err := WriteHistory(&buf, trials); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != len(trials) {
		t.Fatalf("%d lines for %d trials:\n%s", lines, len(trials), buf.String())
	}
	got, err := ReadHistory(&buf, s)
	if err != nil {
		t.Fatal(err)
	}
	sameTrials(t, got, trials)
	for k := range got {
		if got[k].Duration != trials[k].Duration {
			t.Fatalf("trial %d: duration %v, want %v", k, got[k].Duration, trials[k].Duration)
		}
		if u, w := got[k].Point.Unit(), trials[k].Point.Unit(); u[0] != w[0] || u[1] != w[1] {
			t.Fatalf("trial %d: coordinates %v, want %v", k, u, w)
		}
	}
}

func TestReadHistoryErrors(t *testing.T) {
	s := mustSpace(t, Param{Name: "x", Min: 0, Max: 1}, Param{Name: "n", Min: 1, Max: 9, Integer: true})
	ok := `{"index":0,"point":{"x":0.5,"n":3},"result":1,"duration":"1s"}` + "\n"
	for _, tc := range []struct{ name, in, want string }{
		{"bad json", ok + `{"index":1,` + "\n", "record 2"},
		{"bad json inside", ok + `{"index":1,"po{"index":2}` + "\n" + ok, "record 2"},
		{"garbage last line", ok + `index 1`, "record 2"},
		{"no index", `{"point":{"x":0.5,"n":3},"result":1}`, "missing index"},
		{"no point", `{"index":0,"result":1}`, "missing index or point"},
		{"repeated index", ok + ok, "repeated"},
		{"negative index", `{"index":-1,"point":{"x":0.5,"n":3},"result":1}`, "negative"},
		{"unknown parameter", `{"index":0,"point":{"x":0.5,"n":3,"y":1},"result":1}`, "unknown parameter"},
		{"missing parameter", `{"index":0,"point":{"x":0.5},"result":1}`, `no value for parameter "n"`},
		{"out of range", `{"index":0,"point":{"x":1.5,"n":3},"result":1}`, "outside"},
		{"not an integer", `{"index":0,"point":{"x":0.5,"n":3.5},"result":1}`, "not an integer"},
		{"bad duration", `{"index":0,"point":{"x":0.5,"n":3},"result":1,"duration":"soon"}`, "duration"},
	} {
		_, err := ReadHistory(strings.NewReader(tc.in), s)
		if err == nil || !strings.HasPrefix(err.Error(), "hpsearch: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	h, err := ReadHistory(strings.NewReader("\n"+ok+"\n\n"), s)
	if err != nil || len(h) != 1 {
		t.Errorf("blank lines: %v, %d trials", err, len(h))
	}
}

// TestReadHistoryPartialLastLine cuts the last record of a history at every
// byte, as a search killed while writing it would: ReadHistory returns the
// complete records, and ReadHistoryTail also the partial line.
func TestReadHistoryPartialLastLine(t *testing.T) {
	s := mustSpace(t, Param{Name: "x", Min: 0, Max: 1}, Param{Name: "n", Min: 1, Max: 9, Integer: true})
	ok := `{"index":0,"point":{"x":0.5,"n":3},"result":1,"duration":"1s"}` + "\n"
	last := `{"index":1,"point":{"x":0.25,"n":4},"result":null,"error":"diverged","duration":"2s"}`
	for cut := 1; cut < len(last); cut++ {
		h, tail, err := ReadHistoryTail(strings.NewReader(ok+last[:cut]), s)
		if err != nil || len(h) != 1 || h[0].Index != 0 || string(tail) != last[:cut] {
			t.Fatalf("cut at %d: %v, %d trials, tail %q; want 1 trial and tail %q", cut, err, len(h), tail, last[:cut])
		}
		h, err = ReadHistory(strings.NewReader(ok+last[:cut]), s)
		if err != nil || len(h) != 1 {
			t.Fatalf("ReadHistory, cut at %d: %v, %d trials", cut, err, len(h))
		}
	}
	// The whole record without its newline is a record.
	h, tail, err := ReadHistoryTail(strings.NewReader(ok+last), s)
	if err != nil || len(h) != 2 || tail != nil {
		t.Errorf("complete last record: %v, %d trials, tail %q", err, len(h), tail)
	}
}

// TestResumeAfterPartialLine interrupts a search, cuts its history file in
// the middle of a record, and resumes it as the package documentation does,
// with the file opened for appending (and, in a second case, for writing at
// its end without O_APPEND): the resumed records must be readable and the
// history that of an uninterrupted search.
func TestResumeAfterPartialLine(t *testing.T) {
	s := rosenbrockSpace(t)
	const budget, k = 30, 12
	set := func(rec Recorder, hist []Trial) *Settings {
		return &Settings{Budget: budget, Workers: 1, Seed: 7, Recorder: rec, History: hist}
	}
	var full bytes.Buffer
	want, err := Search(context.Background(), s, failingRosenbrock, &Biased{}, set(NewJSONRecorder(&full), nil))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(full.String(), "\n")
	for _, tc := range []struct {
		name string
		tail string // what follows the first k records
		flag int
	}{
		{"partial, append", lines[k][:len(lines[k])/2], os.O_APPEND},
		{"partial, seek", lines[k][:len(lines[k])/2], 0},
		{"one byte", lines[k][:1], os.O_APPEND},
		{"no newline", strings.TrimSuffix(lines[k], "\n"), os.O_APPEND},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "search.jsonl")
			if err := os.WriteFile(path, []byte(strings.Join(lines[:k], "")+tc.tail), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|tc.flag, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			hist, err := ReadHistory(f, s)
			if err != nil {
				t.Fatal(err)
			}
			wantK := k
			if tc.name == "no newline" {
				wantK++
			}
			if len(hist) != wantK {
				t.Fatalf("read %d trials, want %d", len(hist), wantK)
			}
			if _, err := Search(context.Background(), s, failingRosenbrock, &Biased{}, set(NewJSONRecorder(f), hist)); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, tail, err := ReadHistoryTail(bytes.NewReader(data), s)
			if err != nil || tail != nil {
				t.Fatalf("resumed file: %v, partial %q\n%s", err, tail, data)
			}
			sameTrials(t, got, want.History)
			if g, w := durationField.ReplaceAllString(string(data), ""), durationField.ReplaceAllString(full.String(), ""); g != w {
				t.Fatalf("resumed file\n%s\ndiffers from uninterrupted file\n%s", g, w)
			}
		})
	}
}
