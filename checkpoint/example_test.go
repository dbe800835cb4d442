package checkpoint_test

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/secondorder/secondorder/checkpoint"
)

// A checkpoint saved and loaded back: its state files, counters and the
// flags of the run, which a resume compares with its own.
func Example() {
	dir, err := os.MkdirTemp("", "checkpoint-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	c := &checkpoint.Checkpoint{
		Updates: 500,
		Trained: 42 * time.Second,
		Flags:   []checkpoint.Flag{{Name: "lr", Value: "0.1"}},
		Files:   map[string][]byte{"state.bin": []byte("the optimizer's state")},
	}
	if err := checkpoint.Save(dir, c); err != nil { // atomic: a kill leaves the previous one
		log.Fatal(err)
	}
	got, err := checkpoint.Load(dir) // checksums verified
	if err != nil {
		log.Fatal(err)
	}
	lr, _ := got.Flag("lr")
	fmt.Println(got.Updates, got.Trained, lr, string(got.Files["state.bin"]))
	fmt.Println(got.CheckFlags([]checkpoint.Flag{{Name: "lr", Value: "0.2"}}))
	// Output:
	// 500 42s 0.1 the optimizer's state
	// checkpoint: flag lr is "0.2", but the checkpoint was made with "0.1"
}
