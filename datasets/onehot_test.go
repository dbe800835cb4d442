package datasets

import (
	"fmt"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestOneHotTable checks OneHot's rows against hand-written indicators, and
// that its misuse panics with a "datasets: " message naming the problem.
func TestOneHotTable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		labels  []int
		classes int
		want    []float64 // row-major, nil when OneHot must panic
		panic   string
	}{
		{name: "one label", labels: []int{0}, classes: 1, want: []float64{1}},
		{name: "digits", labels: []int{3, 0, 9}, classes: 10, want: []float64{
			0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
			1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		}},
		{name: "repeated labels", labels: []int{1, 1, 0}, classes: 2, want: []float64{0, 1, 0, 1, 1, 0}},
		{name: "unused classes", labels: []int{2}, classes: 4, want: []float64{0, 0, 1, 0}},
		{name: "label too large", labels: []int{0, 3}, classes: 3, panic: "label 3 of row 1 is outside [0, 3)"},
		{name: "negative label", labels: []int{-1}, classes: 3, panic: "label -1 of row 0 is outside [0, 3)"},
		{name: "no classes", labels: []int{0}, classes: 0, panic: "1 labels, 0 classes"},
		{name: "negative classes", labels: []int{0}, classes: -2, panic: "1 labels, -2 classes"},
		{name: "no labels", labels: nil, classes: 10, panic: "0 labels, 10 classes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var y *mat.Dense
			msg := func() (msg string) {
				defer func() {
					if r := recover(); r != nil {
						msg = fmt.Sprint(r)
					}
				}()
				y = OneHot(tc.labels, tc.classes)
				return ""
			}()
			if tc.panic != "" {
				if !strings.HasPrefix(msg, "datasets: OneHot: ") || !strings.Contains(msg, tc.panic) {
					t.Errorf("panic %q, want one starting \"datasets: OneHot: \" and containing %q", msg, tc.panic)
				}
				return
			}
			if msg != "" {
				t.Fatalf("unexpected panic %q", msg)
			}
			want := mat.NewDense(len(tc.labels), tc.classes, tc.want)
			if !mat.Equal(y, want) {
				t.Errorf("got\n%v\nwant\n%v", mat.Formatted(y), mat.Formatted(want))
			}
		})
	}
}
