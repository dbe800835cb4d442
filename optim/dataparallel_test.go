package optim_test

import (
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/secondorder/secondorder/dist"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
	"github.com/secondorder/secondorder/optim/optimtest"
)

// TestDataParallelRefusedTogether checks that when one worker's records
// hold a NaN, every worker refuses the step, with its parameters and
// optimizer state unchanged, and that the next step goes through on all.
func TestDataParallelRefusedTogether(t *testing.T) {
	type maker func(c dist.Comm) optim.Optimizer
	for _, tc := range []struct {
		name string
		new  maker
	}{
		{"SGD", func(c dist.Comm) optim.Optimizer { return &optim.SGD{Comm: c} }},
		{"Centered", func(c dist.Comm) optim.Optimizer { return &optim.Centered{Comm: c} }},
		{"Adam", func(c dist.Comm) optim.Optimizer { return &optim.Adam{Comm: c} }},
		{"KFAC", func(c dist.Comm) optim.Optimizer { return &optim.KFAC{Rules: optim.Rules{Comm: c}} }},
		{"EKFAC", func(c dist.Comm) optim.Optimizer { return &optim.EKFAC{Rules: optim.Rules{Comm: c}} }},
		{"Shampoo", func(c dist.Comm) optim.Optimizer { return &optim.Shampoo{Rules: optim.Rules{Comm: c}} }},
		{"ACP", func(c dist.Comm) optim.Optimizer { return &optim.ACP{Rules: optim.Rules{Comm: c}} }},
	} {
		const workers = 2
		errs := make([][3]error, workers)
		changed := make([][3]int, workers)
		var wg sync.WaitGroup
		for r, c := range dist.NewGroup(workers) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p := optimtest.Classifier(1, nn.Tanh{})
				opt := tc.new(c)
				for k := range 3 {
					p.Next()
					if k == 1 && r == 1 {
						p.Records()[0].GradW.Set(0, 0, math.NaN())
					}
					before := p.Params()
					state, _ := checkpointOf(opt)
					errs[r][k] = opt.Step(p.Records())
					changed[r][k] = p.ParamsChanged(before)
					if errs[r][k] != nil {
						if after, _ := checkpointOf(opt); after != state {
							t.Errorf("%s: worker %d: the refused step changed the optimizer's state", tc.name, r)
						}
					}
				}
			}()
		}
		wg.Wait()
		for r := range workers {
			if errs[r][0] != nil || errs[r][2] != nil {
				t.Errorf("%s: worker %d: steps 0 and 2 gave %v, %v", tc.name, r, errs[r][0], errs[r][2])
			}
			if errs[r][1] == nil || changed[r][1] != 0 {
				t.Errorf("%s: worker %d: step 1 with a NaN on worker 1 gave %v and changed %d parameters", tc.name, r, errs[r][1], changed[r][1])
			}
			if changed[r][2] == 0 {
				t.Errorf("%s: worker %d: step 2 changed nothing", tc.name, r)
			}
		}
		if errs[0][1] != nil && !strings.Contains(errs[0][1].Error(), "another worker refused") {
			t.Errorf("%s: worker 0's error %q does not say another worker refused", tc.name, errs[0][1])
		}
		if errs[1][1] != nil && !strings.Contains(errs[1][1].Error(), "NaN") {
			t.Errorf("%s: worker 1's error %q does not name the NaN", tc.name, errs[1][1])
		}
	}
}

// checkpointOf returns the optimizer's checkpoint as a string, or "" when it
// has none.
func checkpointOf(o optim.Optimizer) (string, error) {
	m, ok := o.(interface{ MarshalBinary() ([]byte, error) })
	if !ok {
		return "", nil
	}
	b, err := m.MarshalBinary()
	return string(b), err
}
