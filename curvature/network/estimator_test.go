package network

import (
	"testing"
)

// TestEstimatorString checks the kfac-jax names.
func TestEstimatorString(t *testing.T) {
	for e, want := range map[Estimator]string{GGNExact: "ggn_exact", FisherExact: "fisher_exact", FisherGradients: "fisher_gradients", FisherEmpirical: "fisher_empirical", Estimator(9): "Estimator(9)"} {
		if got := e.String(); got != want {
			t.Errorf("%d: %q, want %q", int(e), got, want)
		}
	}
}

// TestBackpropBackExamples checks that Fill ties every row of Back to its
// example through the records (secondorder.Layer.BackExample): rows
// i·k … i·k+k−1 to example i for the exact estimators (k outputs), row i to
// example i for one sample or the empirical Fisher, and row j·n+i to
// example i for sample j of several, with BackScale 1/(n·Samples); and
// that the records pass secondorder.Layer.Check.
func TestBackpropBackExamples(t *testing.T) {
	c := cases[4]
	net, X, Y := setup(c, 5, 190)
	n, _ := X.Dims()
	k := c.sizes[len(c.sizes)-1]
	for _, tc := range []struct {
		bp      Backprop
		rows    int
		example func(r int) int
		scale   float64
	}{
		{Backprop{Estimator: GGNExact}, n * k, func(r int) int { return r / k }, 1 / float64(n)},
		{Backprop{Estimator: FisherExact}, n * k, func(r int) int { return r / k }, 1 / float64(n)},
		{Backprop{Estimator: FisherEmpirical}, n, func(r int) int { return r }, 1 / float64(n)},
		{Backprop{Estimator: FisherGradients, Rand: newRand(191)}, n, func(r int) int { return r }, 1 / float64(n)},
		{Backprop{Estimator: FisherGradients, Samples: 3, Rand: newRand(192)}, 3 * n, func(r int) int { return r % n }, 1 / float64(3*n)},
	} {
		name := tc.bp.Estimator.String()
		tc.bp.Fill(net, c.loss, X, Y)
		for l, rec := range net.Records() {
			rec.Check()
			if m, _ := rec.Back.Dims(); m != tc.rows {
				t.Fatalf("%s/layer %d: Back has %d rows, want %d", name, l, m, tc.rows)
			}
			if rec.BackScale != tc.scale {
				t.Errorf("%s/layer %d: BackScale = %g, want %g", name, l, rec.BackScale, tc.scale)
			}
			for r := 0; r < tc.rows; r++ {
				if got, want := rec.BackExample(r), tc.example(r); got != want {
					t.Fatalf("%s/layer %d: row %d belongs to example %d, want %d", name, l, r, got, want)
				}
			}
		}
	}
}
