package network

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/internal/testutil"
	"github.com/secondorder/secondorder/nn"
)

// TestSuite4_FisherEqualsGN proves where the true Fisher (table 3.II) and
// the Gauss–Newton matrix (table 3.I) coincide (thesis §3.2.5): for the
// quadratic loss, whatever the output activation and split (D = 2I for
// both, with the Gaussian of variance ½), and for the cross-entropies at
// the logits split, where D_a = diag(f(1−f)) (binary, sigmoid) and
// diag(f) − f fᵀ (multiclass, softmax, targets summing to one) do not
// depend on the targets. At the outputs split the cross-entropies' GN
// depends on the targets and must differ from the Fisher (relative
// difference > 1e-2), so the test can fail both ways.
// Tolerance for equality: 1e-12·max|F|.
func TestSuite4_FisherEqualsGN(t *testing.T) {
	for ci, c := range cases {
		net, X, Y := setup(c, 5, uint64(90+ci))
		var f mat.SymDense
		FisherMatrix(&f, net, c.loss, X)
		for _, s := range splits {
			var g mat.SymDense
			GaussNewtonMatrix(&g, net, c.loss, X, Y, nn.GaussNewton, s)
			name := c.name + "/" + s.String()
			_, quadratic := c.loss.(nn.Quadratic)
			if quadratic || s == nn.SplitLogits {
				testutil.EqualApprox(t, name, &g, &f, 0, 1e-12)
				continue
			}
			if d := testutil.RelDiff(&g, &f); d < 1e-2 {
				t.Errorf("%s: GN and Fisher agree to %g, want them to differ", name, d)
			}
		}
		// The Fisher is the same matrix written at either split.
		var fo mat.SymDense
		GaussNewtonMatrix(&fo, net, c.loss, X, nil, nn.Fisher, nn.SplitOutputs)
		testutil.EqualApprox(t, c.name+"/Fisher at outputs vs logits", &fo, &f, 0, 1e-12)
	}
}
