package nn

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Classes writes into dst[:0] the predicted class of each row of probs, the
// index of the row's largest entry, and returns it; dst's memory is reused
// when large enough. probs holds one example per row and one column per
// class: the softmax outputs of a classifier (Network.Forward's result) or
// its logits, whose argmax is the same. A tie goes to the smallest index.
// NaN entries never win; a row of NaN only gets class −1, which no label
// matches. Classes panics if probs is nil or has no columns.
func Classes(dst []int, probs mat.Matrix) []int {
	if probs == nil {
		panic("nn: Classes: nil matrix")
	}
	r, c := probs.Dims()
	if c == 0 && r > 0 {
		panic(fmt.Sprintf("nn: Classes: %d×0 matrix, want a column per class", r))
	}
	dst = dst[:0]
	if d, ok := probs.(*mat.Dense); ok {
		for i := 0; i < r; i++ {
			dst = append(dst, argmax(d.RawRowView(i)))
		}
		return dst
	}
	buf := make([]float64, c)
	for i := 0; i < r; i++ {
		for j := range buf {
			buf[j] = probs.At(i, j)
		}
		dst = append(dst, argmax(buf))
	}
	return dst
}

// argmax returns the index of the first largest non-NaN entry of x, or −1
// when every entry is NaN.
func argmax(x []float64) int {
	best := -1
	for j, v := range x {
		if math.IsNaN(v) {
			continue
		}
		if best < 0 || v > x[best] {
			best = j
		}
	}
	return best
}

// Accuracy returns the fraction of the rows of probs whose predicted class
// (Classes) equals the label of the example, labels[i] for row i, in [0, 1].
// It panics if probs is nil, if the number of labels is not the number of
// rows, if there are no examples, or if a label is outside [0, classes),
// classes being the number of columns of probs.
func Accuracy(probs mat.Matrix, labels []int) float64 {
	if probs == nil {
		panic("nn: Accuracy: nil matrix")
	}
	r, c := probs.Dims()
	switch {
	case r != len(labels):
		panic(fmt.Sprintf("nn: Accuracy: %d rows and %d labels", r, len(labels)))
	case r == 0:
		panic("nn: Accuracy: no examples")
	case c == 0:
		panic(fmt.Sprintf("nn: Accuracy: %d×0 matrix, want a column per class", r))
	}
	for i, l := range labels {
		if l < 0 || l >= c {
			panic(fmt.Sprintf("nn: Accuracy: label %d of row %d is outside [0, %d)", l, i, c))
		}
	}
	right := 0
	var buf []float64
	d, dense := probs.(*mat.Dense)
	if !dense {
		buf = make([]float64, c)
	}
	for i, l := range labels {
		var row []float64
		if dense {
			row = d.RawRowView(i)
		} else {
			for j := range buf {
				buf[j] = probs.At(i, j)
			}
			row = buf
		}
		if argmax(row) == l {
			right++
		}
	}
	return float64(right) / float64(r)
}
