package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/secondorder/secondorder/hpsearch"
)

var durationField = regexp.MustCompile(`,"duration":"[^"]*"`)

// TestResumeTiny interrupts a tiny comparison (28 experiments) after 9
// experiments, cuts the last record of one search's history in half as a
// kill would (so that the search has to run that experiment again), resumes it
// with -resume, and checks that the table, results.csv, trials.csv.gz
// (durations aside), the representative histories and every recorded
// history equal those of an uninterrupted run.
func TestResumeTiny(t *testing.T) {
	skipWithoutMNIST(t)
	want, wantDir := t.TempDir(), t.TempDir()
	wantCmp, err := run(context.Background(), tinyConfig(wantDir), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var n, finished atomic.Int64
	c := tinyConfig(want)
	c.onExperiment = func(err error) {
		if err == nil {
			finished.Add(1)
		}
		if n.Add(1) == 9 {
			cancel()
		}
	}
	var out bytes.Buffer
	if _, err := run(ctx, c, &out); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "-resume") {
		t.Fatalf("interrupted run: error %v, want context.Canceled and a hint at -resume\n%s", err, out.String())
	}
	// Every experiment that finished was recorded: the first 9, and those
	// finishing after the cancellation (one per other worker at most); an
	// experiment that saw the cancellation returns its error and is not.
	files, err := filepath.Glob(filepath.Join(want, historiesDir, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	recorded, partial := 0, ""
	for _, f := range files {
		h := readHistoryFile(t, f, wantCmp.space)
		recorded += len(h)
		if len(h) > 1 && partial == "" {
			partial = f
		}
	}
	if int64(recorded) != finished.Load() || recorded < 9 || recorded > 9+c.workers-1 {
		t.Fatalf("%d experiments recorded, %d finished (%d run); want the same, 9 to %d", recorded, finished.Load(), n.Load(), 9+c.workers-1)
	}
	if partial == "" {
		t.Fatalf("no search with 2 or more experiments in %v", files)
	}
	data, err := os.ReadFile(partial)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	last := lines[len(lines)-2]
	cut := strings.Join(lines[:len(lines)-2], "") + last[:len(last)/2]
	if err := os.WriteFile(partial, []byte(cut), 0o644); err != nil {
		t.Fatal(err)
	}

	c = tinyConfig(want)
	c.resume = true
	out.Reset()
	gotCmp, err := run(context.Background(), c, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "recorded earlier") {
		t.Errorf("resumed run does not report restored experiments:\n%s", out.String())
	}
	if g, w := gotCmp.markdown(), wantCmp.markdown(); g != w {
		t.Errorf("resumed table\n%s\ndiffers from uninterrupted\n%s", g, w)
	}
	sameFile(t, "results.csv", want, wantDir, nil)
	for _, m := range wantCmp.methods {
		sameFile(t, "history_"+m+".jsonl", want, wantDir, func(s string) string { return durationField.ReplaceAllString(s, "") })
	}
	for _, f := range files {
		rel, _ := filepath.Rel(want, f)
		sameFile(t, rel, want, wantDir, func(s string) string { return durationField.ReplaceAllString(s, "") })
	}
	if g, w := trialRows(t, want), trialRows(t, wantDir); g != w {
		t.Errorf("resumed trials.csv.gz\n%s\ndiffers from uninterrupted\n%s", g, w)
	}
}

func readHistoryFile(t *testing.T, path string, s *hpsearch.Space) []hpsearch.Trial {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := hpsearch.ReadHistory(f, s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// sameFile compares the file rel under dirs a and b, after norm.
func sameFile(t *testing.T, rel, a, b string, norm func(string) string) {
	t.Helper()
	x, err := os.ReadFile(filepath.Join(a, rel))
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(filepath.Join(b, rel))
	if err != nil {
		t.Fatal(err)
	}
	g, w := string(x), string(y)
	if norm != nil {
		g, w = norm(g), norm(w)
	}
	if g != w {
		t.Errorf("resumed %s\n%s\ndiffers from uninterrupted\n%s", rel, g, w)
	}
}

// trialRows returns dir/trials.csv.gz without its seconds column.
func trialRows(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "trials.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r[:len(r)-1], ",") + "\n")
	}
	return b.String()
}

// TestDefaultOutNotDocs checks that a run writes outside the committed docs/
// unless told.
func TestDefaultOutNotDocs(t *testing.T) {
	out := filepath.ToSlash(filepath.Clean(defaultConfig().out))
	if out == "" || out == "." || out == "docs" || strings.HasPrefix(out, "docs/") || strings.HasPrefix(out, "../") || filepath.IsAbs(out) {
		t.Errorf("default -out %q is not a directory of its own outside docs/", out)
	}
}

// TestOutRefused checks, without running anything, that an -out holding
// output is refused with a one-line error unless -resume or -overwrite is
// given, that -resume refuses a directory without a recorded run or a run
// with other settings, and that -overwrite deletes only the histories.
func TestOutRefused(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "table.md")
	if err := os.WriteFile(table, []byte("committed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oneLine := func(what string, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: accepted", what)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", what, err)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", what, err, w)
			}
		}
	}
	_, err := run(context.Background(), tinyConfig(dir), &bytes.Buffer{})
	oneLine("existing output", err, dir, "-resume", "-overwrite")
	if b, _ := os.ReadFile(table); string(b) != "committed\n" {
		t.Errorf("refused run changed table.md to %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, historiesDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused run created %s: %v", historiesDir, err)
	}

	c := tinyConfig(dir)
	c.resume = true
	_, err = run(context.Background(), c, &bytes.Buffer{})
	oneLine("-resume without a recorded run", err, "-resume", "no recorded run")
	c.overwrite = true
	_, err = run(context.Background(), c, &bytes.Buffer{})
	oneLine("-resume -overwrite", err, "-resume", "-overwrite")
	c = tinyConfig(filepath.Join(dir, "missing"))
	c.resume = true
	_, err = run(context.Background(), c, &bytes.Buffer{})
	oneLine("-resume of a missing directory", err, "no recorded run")
	c = tinyConfig("")
	c.resume = true
	_, err = run(context.Background(), c, &bytes.Buffer{})
	oneLine("-resume without -out", err, "-out")

	// -overwrite starts a new recorded run and keeps other files.
	c = tinyConfig(dir)
	c.overwrite = true
	stale := historyPath(dir, "grid", 0)
	if err := os.MkdirAll(filepath.Dir(stale), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := prepareOut(c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("-overwrite kept the old history %s: %v", stale, err)
	}
	if b, _ := os.ReadFile(table); string(b) != "committed\n" {
		t.Errorf("-overwrite changed table.md to %q", b)
	}

	// -resume refuses other settings, naming them, and accepts the same.
	c = tinyConfig(dir)
	c.resume = true
	if err := prepareOut(c); err != nil {
		t.Fatalf("-resume with the recorded settings: %v", err)
	}
	c.seed, c.updates = 2, 11
	oneLine("-resume with other settings", prepareOut(c), "-seed 2 (recorded 1)", "-updates 11 (recorded 10)")
}
