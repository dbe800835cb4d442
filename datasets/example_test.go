package datasets_test

import (
	"fmt"
	"log"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/secondorder/secondorder/datasets"
)

// Ten examples shuffled into minibatches of four for two epochs. With
// KeepLast the last batch of each epoch has the two remaining rows; without
// it, it would be dropped. Rows and Labels copy the batch's examples.
func ExampleNewBatches() {
	const n = 10
	x := mat.NewDense(n, 1, nil)
	labels := make([]int, n)
	for i := range n {
		x.Set(i, 0, float64(10*i))
		labels[i] = i % 3
	}

	rng := rand.New(rand.NewPCG(1, 2))
	it := datasets.NewBatches(n, rng, datasets.BatchConfig{Size: 4, KeepLast: true, Epochs: 2})
	fmt.Println("batches per epoch:", it.PerEpoch())
	var xb *mat.Dense
	var yb []int
	for it.Next() {
		xb = it.Rows(xb, x)
		yb = it.Labels(yb, labels)
		fmt.Printf("epoch %d batch %d: %d rows %v, x %v, labels %v\n",
			it.Epoch(), it.Batch(), it.Len(), it.Indices(), mat.Col(nil, 0, xb), yb)
	}
	// Output:
	// batches per epoch: 3
	// epoch 0 batch 0: 4 rows [4 2 3 6], x [40 20 30 60], labels [1 2 0 0]
	// epoch 0 batch 1: 4 rows [9 1 8 0], x [90 10 80 0], labels [0 1 2 0]
	// epoch 0 batch 2: 2 rows [5 7], x [50 70], labels [2 1]
	// epoch 1 batch 0: 4 rows [9 5 0 6], x [90 50 0 60], labels [0 2 0 0]
	// epoch 1 batch 1: 4 rows [7 4 8 3], x [70 40 80 30], labels [1 1 2 0]
	// epoch 1 batch 2: 2 rows [1 2], x [10 20], labels [1 2]
}

// A three-class problem of Gaussian blobs and its one-hot targets, the
// targets of a softmax classifier trained on the cross-entropy.
func ExampleBlobs() {
	rng := rand.New(rand.NewPCG(1, 2))
	x, labels, centers := datasets.Blobs(rng, 6, 2, 3, 4, 0.5)
	y := datasets.OneHot(labels, 3)

	r, c := x.Dims()
	k, _ := centers.Dims()
	fmt.Printf("x is %d×%d, %d centers\n", r, c, k)
	fmt.Println("labels:", labels)
	fmt.Printf("x[0] = %.2f near its center %.2f\n", x.RawRowView(0), centers.RawRowView(labels[0]))
	fmt.Printf("one-hot targets:\n%v\n", mat.Formatted(y))
	// Output:
	// x is 6×2, 3 centers
	// labels: [0 1 2 0 1 2]
	// x[0] = [2.48 1.16] near its center [1.52 0.30]
	// one-hot targets:
	// ⎡1  0  0⎤
	// ⎢0  1  0⎥
	// ⎢0  0  1⎥
	// ⎢1  0  0⎥
	// ⎢0  1  0⎥
	// ⎣0  0  1⎦
}

// A tiny stand-in for MNIST: images of 16 pixels in (0, 1) whose logits
// have rank 2, which an autoencoder with a code of 2 units can reproduce.
func ExampleLowRankImages() {
	rng := rand.New(rand.NewPCG(1, 2))
	x := datasets.LowRankImages(rng, 100, 16, 2)
	r, c := x.Dims()
	extreme := 0
	for _, v := range x.RawMatrix().Data {
		if v < 0.1 || v > 0.9 {
			extreme++
		}
	}
	fmt.Printf("%d images of %d pixels, %.0f%% of the pixels below 0.1 or above 0.9\n",
		r, c, 100*float64(extreme)/float64(r*c))
	// Output:
	// 100 images of 16 pixels, 51% of the pixels below 0.1 or above 0.9
}

// LoadMNIST finds the MNIST files (MNIST_DIR, then the Go module cache, then
// go mod download) and reads them. This example has no output: it is
// compiled, not run, so that the tests do not download anything.
func ExampleLoadMNIST() {
	data, err := datasets.LoadMNIST("")
	if err != nil {
		log.Fatal(err) // wraps ErrMNISTNotFound when no place holds the files
	}
	fmt.Println(data.TrainImages.Dims()) // 60000 784
	fmt.Println(len(data.TestLabels))    // 10000
	fmt.Println("read from", data.Dir, "found by", data.Source)
}

// A run interrupted after its first batch and resumed from a checkpoint: the
// state of the Batches and that of its random source, saved at the same
// point, give the resumed iterator the batches the uninterrupted one would
// have given.
func ExampleBatches_MarshalBinary() {
	const n = 10
	cfg := datasets.BatchConfig{Size: 4, Epochs: 2}
	src := rand.NewPCG(1, 2)
	it := datasets.NewBatches(n, rand.New(src), cfg)
	it.Next()
	itState, err := it.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	srcState, err := src.MarshalBinary() // the Batches does not save its rng
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("saved at epoch", it.Epoch(), "batch", it.Batch(), it.Indices())
	for it.Next() {
		fmt.Println("uninterrupted:", it.Epoch(), it.Batch(), it.Indices())
	}

	// Resume, perhaps in another process: build both as before, then
	// restore them.
	src2 := rand.NewPCG(0, 0)
	resumed := datasets.NewBatches(n, rand.New(src2), cfg)
	if err := src2.UnmarshalBinary(srcState); err != nil {
		log.Fatal(err)
	}
	if err := resumed.UnmarshalBinary(itState); err != nil {
		log.Fatal(err)
	}
	fmt.Println("restored at epoch", resumed.Epoch(), "batch", resumed.Batch(), resumed.Indices())
	for resumed.Next() {
		fmt.Println("resumed:      ", resumed.Epoch(), resumed.Batch(), resumed.Indices())
	}
	// Output:
	// saved at epoch 0 batch 0 [4 2 3 6]
	// uninterrupted: 0 1 [9 1 8 0]
	// uninterrupted: 1 0 [9 5 0 6]
	// uninterrupted: 1 1 [7 4 8 3]
	// restored at epoch 0 batch 0 [4 2 3 6]
	// resumed:       0 1 [9 1 8 0]
	// resumed:       1 0 [9 5 0 6]
	// resumed:       1 1 [7 4 8 3]
}
