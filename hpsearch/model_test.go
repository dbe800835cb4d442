package hpsearch

import (
	"math"
	"testing"
)

func TestCostModels(t *testing.T) {
	obs := []Observation{
		{X: []float64{0, 0}, Y: 1},
		{X: []float64{1, 0}, Y: 2},
		{X: []float64{0, 1}, Y: 3},
		{X: []float64{1, 1}, Y: 4},
		{X: []float64{1, 0}, Y: 6}, // same place as the second
	}
	for _, tc := range []struct {
		name  string
		model CostModel
		x     []float64
		want  float64
	}{
		{"1nn", NearestNeighbor{}, []float64{0.1, 0.2}, 1},
		{"1nn far corner", NearestNeighbor{}, []float64{0.9, 0.8}, 4},
		{"1nn tie keeps first", NearestNeighbor{}, []float64{0.5, 0}, 1},
		{"1nn duplicate keeps first", NearestNeighbor{}, []float64{1, 0}, 2},
		// Centre: all five at the same distance; K=4 keeps the first
		// four, with equal weights.
		{"knn centre", KNN{K: 4}, []float64{0.5, 0.5}, 2.5},
		{"knn exact duplicates", KNN{K: 3}, []float64{1, 0}, 4},
		{"knn k=1", KNN{K: 1}, []float64{0.9, 0.8}, 4},
		// Default K=5, Power=2: all five observations, at distances
		// 0.25, 0.75, √(0.25²+1), √(0.75²+1) and 0.75 from x.
		{"knn weighted", KNN{}, []float64{0.25, 0}, knnRef([]float64{0.25, 0.75, math.Hypot(0.25, 1), math.Hypot(0.75, 1), 0.75}, []float64{1, 2, 3, 4, 6}, 2)},
		{"knn power 1", KNN{K: 2, Power: 1}, []float64{0.25, 0}, (4*1 + 4.0/3*2) / (4 + 4.0/3)},
	} {
		got := tc.model.Estimate(obs, tc.x)
		if math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: estimate %v, want %v", tc.name, got, tc.want)
		}
	}
	if !math.IsNaN(NearestNeighbor{}.Estimate(nil, []float64{0})) || !math.IsNaN(KNN{}.Estimate(nil, []float64{0})) {
		t.Error("estimate without observations is not NaN")
	}
}

// knnRef is the inverse-distance weighted mean written out.
func knnRef(d, y []float64, power float64) float64 {
	var num, den float64
	for i := range d {
		w := math.Pow(d[i], -power)
		num += w * y[i]
		den += w
	}
	return num / den
}
