package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// LinearRegression returns a regression problem with known parameters:
// inputs x (n×d), targets y (n×k), weights w (k×d) and biases b (k), with
//
//	y = x wᵀ + 1 bᵀ + noise·e,
//
// where the entries of x, w, b and e are independent standard normal draws
// from rng. With noise = 0 the least-squares fit recovers w and b exactly
// when n > d. It panics if n, d or k is not positive or noise is negative.
func LinearRegression(rng *rand.Rand, n, d, k int, noise float64) (x, y, w *mat.Dense, b *mat.VecDense) {
	checkSizes("LinearRegression", n, d, k)
	if noise < 0 || math.IsNaN(noise) {
		panic(fmt.Sprintf("datasets: LinearRegression: noise %v", noise))
	}
	x = normalDense(rng, n, d, 1)
	w = normalDense(rng, k, d, 1)
	b = mat.NewVecDense(k, normalSlice(rng, k, 1))
	y = mat.NewDense(n, k, nil)
	y.Mul(x, w.T())
	for i := range n {
		row := y.RawRowView(i)
		for j := range row {
			row[j] += b.AtVec(j) + noise*rng.NormFloat64()
		}
	}
	return x, y, w, b
}

// Blobs returns a classification problem of n points in d dimensions around
// one Gaussian blob per class: the centers (classes×d) have independent
// normal coordinates of standard deviation sep, and point i belongs to class
// labels[i] = i mod classes, at its class center plus independent normal
// noise of standard deviation std in each coordinate. Two classes give a
// binary problem; sep/std sets how separable the classes are. It panics if
// n, d or classes is not positive, or sep or std is negative.
func Blobs(rng *rand.Rand, n, d, classes int, sep, std float64) (x *mat.Dense, labels []int, centers *mat.Dense) {
	checkSizes("Blobs", n, d, classes)
	if !(sep >= 0) || !(std >= 0) {
		panic(fmt.Sprintf("datasets: Blobs: sep %v, std %v", sep, std))
	}
	centers = normalDense(rng, classes, d, sep)
	x = normalDense(rng, n, d, std)
	labels = make([]int, n)
	for i := range n {
		c := i % classes
		labels[i] = c
		row, center := x.RawRowView(i), centers.RawRowView(c)
		for j := range row {
			row[j] += center[j]
		}
	}
	return x, labels, centers
}

// LowRankImages returns n binary-ish "images" of d pixels in (0, 1), a tiny
// stand-in for MNIST in autoencoder tests:
//
//	x = σ(5 z bᵀ / √rank),
//
// with σ the logistic function and z (n×rank), b (d×rank) independent
// standard normal draws from rng. Most pixels lie near 0 or 1, and the
// logits have rank rank, so an autoencoder with a code of rank units and
// logistic outputs can reconstruct x exactly. It panics if n, d or rank is
// not positive.
func LowRankImages(rng *rand.Rand, n, d, rank int) *mat.Dense {
	checkSizes("LowRankImages", n, d, rank)
	z := normalDense(rng, n, rank, 1)
	b := normalDense(rng, d, rank, 1)
	x := mat.NewDense(n, d, nil)
	x.Mul(z, b.T())
	gain := 5 / math.Sqrt(float64(rank))
	data := x.RawMatrix().Data
	for i, v := range data {
		data[i] = 1 / (1 + math.Exp(-gain*v))
	}
	return x
}

// OneHot returns the n×classes matrix whose row i is the indicator of
// labels[i], the targets of a classifier. It panics if classes is not
// positive or a label is outside [0, classes).
func OneHot(labels []int, classes int) *mat.Dense {
	if classes <= 0 || len(labels) == 0 {
		panic(fmt.Sprintf("datasets: OneHot: %d labels, %d classes", len(labels), classes))
	}
	y := mat.NewDense(len(labels), classes, nil)
	for i, l := range labels {
		if l < 0 || l >= classes {
			panic(fmt.Sprintf("datasets: OneHot: label %d of row %d is outside [0, %d)", l, i, classes))
		}
		y.Set(i, l, 1)
	}
	return y
}

func checkSizes(fn string, n, d, k int) {
	if n <= 0 || d <= 0 || k <= 0 {
		panic(fmt.Sprintf("datasets: %s: sizes %d, %d, %d must be positive", fn, n, d, k))
	}
}

// normalDense returns an r×c matrix of independent normal draws of standard
// deviation std.
func normalDense(rng *rand.Rand, r, c int, std float64) *mat.Dense {
	return mat.NewDense(r, c, normalSlice(rng, r*c, std))
}

func normalSlice(rng *rand.Rand, n int, std float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = std * rng.NormFloat64()
	}
	return s
}
