package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// TestRunTiny runs the comparison for a few updates on 2000 images: three
// rows, finite scores, the table printed.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("reads MNIST")
	}
	c := config{hidden: 16, act: "tanh", batch: 50, updates: 20, train: 2000, seed: 1}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	res, err := run(c, &out)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	for _, r := range res {
		if !(r.testAcc > 30) || math.IsNaN(r.testNLL) || math.IsInf(r.testNLL, 0) {
			t.Errorf("%s: test accuracy %.2f %%, loss %g after 20 updates", r.name, r.testAcc, r.testNLL)
		}
	}
	if !strings.Contains(out.String(), "| method |") {
		t.Errorf("no table in the output:\n%s", out.String())
	}
}

// TestCheckRefuses checks the flag validation.
func TestCheckRefuses(t *testing.T) {
	good := config{hidden: 16, act: "relu", batch: 10, updates: 1}
	for _, c := range []config{
		{hidden: 0, act: "relu", batch: 10, updates: 1},
		{hidden: 16, act: "sigmoid", batch: 10, updates: 1},
		{hidden: 16, act: "relu", batch: 0, updates: 1},
		{hidden: 16, act: "relu", batch: 10, updates: 0},
		{hidden: 16, act: "relu", batch: 10, updates: 1, train: -1},
	} {
		if err := c.check(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := good.check(); err != nil {
		t.Error(err)
	}
}
