package training

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secondorder/secondorder/checkpoint"
	"github.com/secondorder/secondorder/datasets"
	"github.com/secondorder/secondorder/nn"
	"github.com/secondorder/secondorder/optim"
)

// TestWriterInterruptedSave checks that the leftovers of a save killed
// before its manifest (a temporary directory, a next generation, a
// temporary manifest) leave the previous checkpoint in force, and that the
// next save replaces and removes them.
func TestWriterInterruptedSave(t *testing.T) {
	dir := t.TempDir()
	flags := []checkpoint.Flag{{Name: "opt", Value: "sgd"}, {Name: "lr", Value: ""}}
	src := rand.NewPCG(1, 2)
	net := nn.NewAutoencoder([]int{4, 2, 4})
	s := State{Net: net, Optimizer: &optim.SGD{Rate: 0.1}, Batches: datasets.NewBatches(10, rand.New(src), datasets.BatchConfig{Size: 5}), Source: src}
	s.Batches.Next()
	cp := &Writer{Dir: dir, Flags: flags, SavedAt: -1}
	if err := cp.Save(s, 3, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".tmp-123", "g000002"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "network.nn"), []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".manifest.tmp-456"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	ck, err := Read(dir, flags, "the default")
	if err != nil {
		t.Fatal(err)
	}
	if ck.Generation != 1 || ck.Updates != 3 || ck.Trained != time.Second {
		t.Errorf("checkpoint of generation %d, %d updates, %v; want 1, 3, 1s", ck.Generation, ck.Updates, ck.Trained)
	}
	s.Batches.Next()
	src.Uint64()
	if err := cp.Save(s, 4, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if ck, err = Read(dir, flags, "the default"); err != nil || ck.Generation != 2 || ck.Updates != 4 {
		t.Fatalf("after the next save: %+v, %v", ck, err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "g000002 manifest" {
		t.Errorf("directory holds %s, want g000002 manifest", got)
	}
	// The restored state is the saved one.
	src2 := rand.NewPCG(0, 0)
	s2 := State{Net: nn.NewAutoencoder([]int{4, 2, 4}), Optimizer: &optim.SGD{Rate: 0.1}, Batches: datasets.NewBatches(10, rand.New(src2), datasets.BatchConfig{Size: 5}), Source: src2}
	if err := s2.Restore(dir, ck); err != nil {
		t.Fatal(err)
	}
	if src.Uint64() != src2.Uint64() || s2.Batches.Batch() != s.Batches.Batch() {
		t.Error("restored random source or batches differ from the saved ones")
	}
}
