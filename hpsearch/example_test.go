package hpsearch_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"math"

	"github.com/secondorder/secondorder/hpsearch"
)

// This example tunes a learning rate (log scale) and a batch size (integer, log
// scale) by biased random search on a synthetic validation loss, recording
// the history as JSON lines, then resumes the search from the record to a
// larger budget.
func Example() {
	space, err := hpsearch.NewSpace(
		hpsearch.Param{Name: "lr", Min: 1e-4, Max: 1, Scale: hpsearch.Log},
		hpsearch.Param{Name: "batch", Min: 16, Max: 512, Scale: hpsearch.Log, Integer: true},
	)
	if err != nil {
		log.Fatal(err)
	}
	// A loss with its minimum at lr = 10⁻², batch = 64, which diverges for
	// large learning rates.
	loss := func(ctx context.Context, p hpsearch.Point) (float64, error) {
		lr, batch := p.Get("lr"), p.Int("batch")
		if lr > 0.5 {
			return math.Inf(1), nil // a failed experiment
		}
		u, v := math.Log10(lr)+2, math.Log2(float64(batch))-6
		return 1 + u*u + 0.1*v*v, nil
	}

	var file bytes.Buffer // an *os.File in practice
	settings := &hpsearch.Settings{Budget: 30, Workers: 1, Seed: 1, Recorder: hpsearch.NewJSONRecorder(&file)}
	res, err := hpsearch.Search(context.Background(), space, loss, &hpsearch.Biased{}, settings)
	if err != nil {
		log.Fatal(err)
	}
	best, value, _ := res.Best()
	fmt.Printf("%d experiments: best loss %.3f at lr=%.2g batch=%d\n", len(res.History), value, best.Get("lr"), best.Int("batch"))

	// Later: read the record back and continue to 60 experiments.
	hist, err := hpsearch.ReadHistory(bytes.NewReader(file.Bytes()), space)
	if err != nil {
		log.Fatal(err)
	}
	settings.Budget, settings.History = 60, hist
	res, err = hpsearch.Search(context.Background(), space, loss, &hpsearch.Biased{}, settings)
	if err != nil {
		log.Fatal(err)
	}
	best, value, _ = res.Best()
	fmt.Printf("%d experiments: best loss %.3f at lr=%.2g batch=%d\n", len(res.History), value, best.Get("lr"), best.Int("batch"))
	var failed int
	for _, t := range res.History {
		if t.Failed() {
			failed++
		}
	}
	fmt.Println("failed experiments:", failed)
	// Output:
	// 30 experiments: best loss 1.076 at lr=0.0097 batch=35
	// 60 experiments: best loss 1.021 at lr=0.014 batch=67
	// failed experiments: 2
}

// The grid of the thesis's example (§2.3): learning rates 10⁻³ … 1 on a log
// scale, here crossed with two momentum values.
func ExampleGrid_Points() {
	space, err := hpsearch.NewSpace(
		hpsearch.Param{Name: "lr", Min: 1e-3, Max: 1, Scale: hpsearch.Log},
		hpsearch.Param{Name: "momentum", Min: 0, Max: 0.9},
	)
	if err != nil {
		log.Fatal(err)
	}
	grid := &hpsearch.Grid{Counts: []int{4, 2}}
	points, err := grid.Points(space, 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range points {
		fmt.Printf("lr=%.3g momentum=%.1f\n", p.Get("lr"), p.Get("momentum"))
	}
	// Output:
	// lr=0.001 momentum=0.0
	// lr=0.001 momentum=0.9
	// lr=0.01 momentum=0.0
	// lr=0.01 momentum=0.9
	// lr=0.1 momentum=0.0
	// lr=0.1 momentum=0.9
	// lr=1 momentum=0.0
	// lr=1 momentum=0.9
}
