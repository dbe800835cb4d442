package network

import (
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/nn"
)

// TestRefusesNonPlainNetworks checks that the network-level functions that
// rebuild the network from its affine maps refuse networks with batch
// normalisation or whitening instead of returning wrong matrices.
func TestRefusesNonPlainNetworks(t *testing.T) {
	rng := newRand(4)
	x := mat.NewDense(6, 4, nil)
	x.Apply(func(_, _ int, _ float64) float64 { return rng.Float64() }, x)
	for _, tc := range []struct {
		name string
		net  *nn.Network
	}{
		{"batchnorm", nn.NewAutoencoderNorm([]int{4, 3, 4}, nn.BatchNorm)},
		{"whitened", nn.NewAutoencoderWhitened([]int{4, 3, 4})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.net.Init(nn.Glorot{}, rng)
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "network: ") || !strings.Contains(msg, "plain") {
					t.Errorf("panic %q, want a network: message about plain networks", msg)
				}
			}()
			var h mat.SymDense
			HessianMatrix(&h, tc.net, nn.Quadratic{}, x, x)
		})
	}
}
