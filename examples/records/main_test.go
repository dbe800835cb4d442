package main

import (
	"io"
	"testing"
)

// TestEveryOptimizerFitsTheTeacher drives each optimizer from the
// hand-made records and checks that it lowers the risk at least tenfold.
func TestEveryOptimizerFitsTheTeacher(t *testing.T) {
	for _, name := range []string{"sgd", "adam", "centered", "acp", "kfac"} {
		first, last, err := run(name, 200, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !(last < first/10) {
			t.Errorf("%s: risk %.4g → %.4g, want a tenfold decrease", name, first, last)
		}
	}
}
