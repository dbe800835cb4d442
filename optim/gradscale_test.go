package optim_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/secondorder/secondorder"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim/optimtest"
)

// TestGradDividedByNRefused gives every optimizer records whose Grad rows
// are gradients of the mean loss (divided by n, as PyTorch's hooks give
// them): the optimizers that read Grad refuse them with an error wrapping
// secondorder.ErrGradDividedByN and leave the parameters unchanged; the
// others, which read only GradW and GradB, step as usual.
func TestGradDividedByNRefused(t *testing.T) {
	for _, row := range optimizersUnderTest {
		t.Run(row.name, func(t *testing.T) {
			p := optimtest.Classifier(harnessSeed, nn.ReLU{})
			opt := row.new(p)
			p.Next()
			recs := p.Records()
			for _, l := range recs {
				n, _ := l.Grad.Dims()
				l.Grad.Scale(1/float64(n), l.Grad)
			}
			before := p.Params()
			err, panicked := step(opt, recs)
			if panicked != nil {
				t.Fatalf("Step panicked: %v", panicked)
			}
			if !slices.Contains(row.reads, "Grad") {
				if err != nil {
					t.Fatalf("%s does not read Grad, but Step returned %v", row.name, err)
				}
				return
			}
			if !errors.Is(err, secondorder.ErrGradDividedByN) {
				t.Fatalf("Step returned %v, want an error wrapping ErrGradDividedByN", err)
			}
			if changed := p.ParamsChanged(before); changed != 0 {
				t.Errorf("refused step changed %d parameters", changed)
			}
		})
	}
}
