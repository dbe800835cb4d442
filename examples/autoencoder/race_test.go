package main

import (
	"bytes"
	"encoding/csv"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestRace runs -figure race for a moment on a small net and checks its
// outputs: race.csv with every method's evaluations, from update 0, and
// the Markdown table with one row per method.
func TestRace(t *testing.T) {
	needMNIST(t)
	dir := t.TempDir()
	c := parse(t, "-figure", "race", "-arch", "784-16-784", "-time", "100ms", "-eval", "200", "-out", dir)
	var out bytes.Buffer
	if _, err := run(c, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "race.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "method,seconds,update,train_err,test_err" {
		t.Fatalf("race.csv header %q", rows[0])
	}
	starts := map[string]int{}
	for _, f := range rows[1:] {
		if f[2] == "0" {
			starts[f[0]]++
		}
	}
	table, err := os.ReadFile(filepath.Join(dir, "figurerace.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range figures["race"] {
		if starts[e.label] != 1 {
			t.Errorf("race.csv: %d rows at update 0 for %s, want 1", starts[e.label], e.label)
		}
		if !strings.Contains(string(table), "| "+e.label+" | ") {
			t.Errorf("table has no row for %s:\n%s", e.label, table)
		}
	}
	if len(rows)-1 < 2*len(figures["race"]) {
		t.Errorf("race.csv has %d evaluations for %d methods, want at least a start and an end each", len(rows)-1, len(figures["race"]))
	}
}

// TestRaceTable checks the race's evaluation times and the table read from
// the curves at each horizon.
func TestRaceTable(t *testing.T) {
	if got, want := raceTimes(4*time.Minute), []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute}; !reflect.DeepEqual(got, want) {
		t.Errorf("raceTimes(4m) = %v, want %v", got, want)
	}
	curves := []curve{
		{name: "A", points: []point{{seconds: 0, trainErr: 50}, {seconds: 61, trainErr: 10}, {seconds: 299.5, trainErr: 5}}},
		{name: "B", points: []point{{seconds: 0, trainErr: 50}, {seconds: 30, trainErr: 20}}},
	}
	var b strings.Builder
	writeRaceTable(&b, curves, 5*time.Minute)
	want := "| method | 1 min | 5 min |\n|---|---|---|\n| A | 10.00 | 5.00 |\n| B | – | – |\n"
	if b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	writeRaceTable(&b, curves[1:], 90*time.Second)
	if want := "| method | 1 min | 90 s |\n|---|---|---|\n| B | – | – |\n"; b.String() != want {
		t.Errorf("table\n%s\nwant\n%s", b.String(), want)
	}
}

// TestRaceMethods: -methods trains only the methods named and takes the
// others' curves from their logs under -out, so that a race can be
// completed method by method: after -methods sgd then -methods adam,
// race.csv and the table hold SGD and Adam and no other method, also after
// -methods none, which redraws from the logs; a method trained already, or
// one outside the figure, is refused.
func TestRaceMethods(t *testing.T) {
	needMNIST(t)
	dir := t.TempDir()
	for _, m := range []string{"sgd", "adam"} {
		c := parse(t, "-figure", "race", "-methods", m, "-arch", "784-16-784", "-time", "100ms", "-eval", "200", "-out", dir)
		var out bytes.Buffer
		if _, err := run(c, &out); err != nil {
			t.Fatalf("-methods %s: %v\n%s", m, err, out.String())
		}
	}
	// -methods none redraws the figure from the logs alone.
	c := parse(t, "-figure", "race", "-methods", "none", "-arch", "784-16-784", "-time", "100ms", "-out", dir)
	if _, err := run(c, &bytes.Buffer{}); err != nil {
		t.Fatalf("-methods none: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "race.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{}
	for _, r := range rows[1:] {
		methods[r[0]] = true
	}
	if !reflect.DeepEqual(methods, map[string]bool{"SGD": true, "Adam": true}) {
		t.Errorf("race.csv holds %v, want SGD and Adam", methods)
	}
	table, _ := os.ReadFile(filepath.Join(dir, "figurerace.md"))
	if !strings.Contains(string(table), "| SGD | ") || !strings.Contains(string(table), "| Adam | ") {
		t.Errorf("table:\n%s", table)
	}
	for _, args := range [][]string{{"-methods", "sgd"}, {"-methods", "lbfgs"}} {
		c := parse(t, append([]string{"-figure", "race", "-arch", "784-16-784", "-time", "100ms", "-out", dir}, args...)...)
		if _, err := run(c, &bytes.Buffer{}); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}
